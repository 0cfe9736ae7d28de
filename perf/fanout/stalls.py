#!/usr/bin/env python3
"""perf/fanout/stalls.py NODES.json [PREV.json] — where the run's senders waited.

Reads `fdadmin nodes --json` (each node's send stalls as its last heartbeat
carried them, cumulative ms since the node started; docs/ARCHITECTURE.md,
"Flow control") and prints, for the origins and for the nodes apart and in
all, the time senders were blocked by cause — peer_window (a child's credit),
socket (the sender's own link or TCP), pool, upload_cap — and, as receivers,
how long stored chunks held their senders' credit in their write and in
their fdatasync; then the five children that held their parents back
longest. With PREV.json (the same taken at the start of the run) only what
the run added is counted. Then one `key value` line per figure after a line
`json:`, for the run's JSON. Standard library only.
"""
import json
import sys

CAUSES = [("peer_window", "blocked_ms"), ("socket", "blocked_socket_ms"),
          ("pool", "blocked_pool_ms"), ("upload_cap", "blocked_upload_cap_ms")]
CREDIT = [("write", "credit_write_ms"), ("sync", "credit_sync_ms")]
KEYS = [k for _, k in CAUSES + CREDIT]


def load(path):
    with open(path) as f:
        return {n["node_id"]: n for n in json.load(f)}


def main():
    now = load(sys.argv[1])
    prev = load(sys.argv[2]) if len(sys.argv) > 2 else {}
    groups = {"origins": dict.fromkeys(KEYS, 0), "nodes": dict.fromkeys(KEYS, 0)}
    children = {}
    for nid, n in now.items():
        p = prev.get(nid, {"stalls": dict.fromkeys(KEYS, 0), "child_stalls": []})
        g = groups["origins" if nid.startswith("o") else "nodes"]
        for k in KEYS:
            g[k] += max(0, n["stalls"][k] - p["stalls"][k])
        before = {c["node_id"]: c["blocked_ms"] for c in p["child_stalls"]}
        for c in n["child_stalls"]:
            d = c["blocked_ms"] - before.get(c["node_id"], 0)
            if d > 0:
                children[(nid, c["node_id"])] = d
    total = {k: groups["origins"][k] + groups["nodes"][k] for k in KEYS}
    for name, g in (("origins", groups["origins"]), ("nodes", groups["nodes"]), ("all", total)):
        blocked = ", ".join("%s %.3f" % (c, g[k] / 1e3) for c, k in CAUSES)
        credit = ", ".join("%s %.3f" % (c, g[k] / 1e3) for c, k in CREDIT)
        print("report: stalls %-7s senders blocked (s, summed over senders): %s; "
              "credit held as receivers (s, summed over chunks): %s" % (name, blocked, credit))
    top = sorted(children.items(), key=lambda kv: -kv[1])[:5]
    if top:
        print("report: stalls longest child waits (parent->child s): " +
              ", ".join("%s->%s %.3f" % (a, b, ms / 1e3) for (a, b), ms in top))
    print("json:")
    for name, g in (("origins", groups["origins"]), ("nodes", groups["nodes"]), ("all", total)):
        for c, k in CAUSES:
            print("stalls.%s.blocked_s.%s %.3f" % (name, c, g[k] / 1e3))
        for c, k in CREDIT:
            print("stalls.%s.credit_held_s.%s %.3f" % (name, c, g[k] / 1e3))


if __name__ == "__main__":
    main()
