#!/usr/bin/env python3
"""perf/fanout/reach.py IP... — which of these IPv4 hosts answer an ICMP echo.

Run inside a network namespace (ip netns exec NS python3 reach.py ...) to
prove the routes of the emulated topology: sends one echo request to every
target, collects replies for up to 0.5 s, re-sends to the silent ones, at
most 4 rounds (so it ends within about 2 s). Prints the unreachable targets,
one per line, and exits 1 if there are any, 0 if every target answered.
Needs root (raw socket). Standard library only.
"""
import os
import select
import socket
import struct
import sys
import time

ROUNDS = 4
ROUND_S = 0.5


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo_request(ident, seq):
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    payload = b"fdist-fanout-reach"
    return struct.pack("!BBHHH", 8, 0, checksum(hdr + payload), ident, seq) + payload


def main():
    targets = sys.argv[1:]
    if not targets:
        sys.stderr.write("usage: reach.py IP...\n")
        return 2
    ident = os.getpid() & 0xFFFF
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    missing = {socket.inet_aton(t): t for t in targets}
    for rnd in range(ROUNDS):
        for packed, text in list(missing.items()):
            try:
                sock.sendto(echo_request(ident, rnd), (text, 0))
            except OSError:
                pass  # no route: stays missing
        deadline = time.monotonic() + ROUND_S
        while missing:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                break
            pkt, _ = sock.recvfrom(2048)
            ihl = (pkt[0] & 0x0F) * 4
            icmp_type, _, _, rid, _ = struct.unpack("!BBHHH", pkt[ihl:ihl + 8])
            if icmp_type == 0 and rid == ident:
                missing.pop(pkt[12:16], None)
        if not missing:
            break
    for text in missing.values():
        print(text)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
