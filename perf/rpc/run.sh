#!/usr/bin/env bash
# perf/rpc/run.sh — the rpc benchmarks beside iperf3, measured in the same run.
#
#   (a) unary ping-pong: calls/s, p50/p99 latency, 1 and 64 concurrent clients
#   (b) bulk streaming one hop, and relayed A -> B -> C (B forwards each chunk
#       from the buffer it received it into), each as a ratio of iperf3 over
#       loopback; also SEND_ZC vs plain send vs a raw splice relay.
#
# usage: perf/rpc/run.sh [--build DIR] [--seconds S] [--help]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
seconds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    -h|--help)
      sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
      echo "Targets: one hop >= 0.8 of iperf3, relay >= 0.7. Build first: ./scripts/build.sh release"
      exit 0 ;;
    *) echo "run.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
bench=$build/perf/rpc/rpc_bench
[ -x "$bench" ] || { echo "run.sh: $bench not built (./scripts/build.sh release)" >&2; exit 1; }
command -v iperf3 >/dev/null || { echo "run.sh: iperf3 not installed" >&2; exit 1; }

echo "machine: $(uname -r), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"

result() { awk -v k="$1" '$1 == "RESULT" && $2 == k { print $3 }'; }

iperf() {
  local port=$((20000 + RANDOM % 20000))
  iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
  local pid=$!
  sleep 0.3
  # -f g: Gbit/s; the receiver's line is what arrived.
  iperf3 -c 127.0.0.1 -p "$port" -t "$seconds" -f g 2>/dev/null |
    awk '/receiver/ { for (i = 2; i <= NF; i++) if ($i == "Gbits/sec") print $(i - 1) }'
  wait "$pid" 2>/dev/null || true
}

echo
echo "(a) unary ping-pong, ${seconds}s each"
for c in 1 64; do
  out=$("$bench" unary --clients "$c" --seconds "$seconds" 2>/dev/null)
  printf "  %2d client(s): %8s calls/s   p50 %5s us   p99 %5s us\n" "$c" \
    "$(echo "$out" | result unary_c${c}_calls_per_s)" "$(echo "$out" | result unary_c${c}_p50)" \
    "$(echo "$out" | result unary_c${c}_p99)"
done

echo
echo "(b) bulk, 4 MiB chunks, ${seconds}s each; iperf3 over loopback measured before each"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
for mode in auto zc copy; do
  ref=$(iperf)
  one=$("$bench" stream --seconds "$seconds" --send "$mode" 2>/dev/null | result stream_gbps)
  ref2=$(iperf)
  rel=$("$bench" relay --seconds "$seconds" --send "$mode" 2>/dev/null | result relay_gbps)
  printf "  send=%-4s one hop %6s Gbit/s vs iperf3 %6.2f: ratio %s (target 0.8)\n" "$mode" "$one" "$ref" "$(ratio "$one" "$ref")"
  printf "  send=%-4s relay   %6s Gbit/s vs iperf3 %6.2f: ratio %s (target 0.7)\n" "$mode" "$rel" "$ref2" "$(ratio "$rel" "$ref2")"
done
ref=$(iperf)
spl=$("$bench" splice --seconds "$seconds" 2>/dev/null | result splice_relay_gbps)
printf "  raw splice relay (socket->pipe->socket) %6s Gbit/s vs iperf3 %6.2f: ratio %s\n" "$spl" "$ref" "$(ratio "$spl" "$ref")"
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
