#!/usr/bin/env bash
# perf/engines/bench.sh — what fdnode's `threads` buys when one node uploads
# to many children: one node holding a complete version, P pullers (each a
# child: fresh connections, RepairPull of every chunk, bytes counted, SHA-256
# skipped so the pullers cost little) against fdnode threads = 1 and 2,
# alternated R times; iperf3 with P streams over loopback is the reference,
# measured in the same run. Prints Gbit/s, the ratio to iperf3 and fdnode's
# CPU seconds per GiB sent.
#
# usage: perf/engines/bench.sh [--build DIR] [--size MIB] [--pullers P]
#        [--conns C] [--chunk SIZE] [--rounds R] [--dir DIR] [--threads "1 2"]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build size=256 pullers=8 conns=2 chunk=4M rounds=3 dir=/dev/shm threads="1 2"
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --pullers) pullers=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --chunk) chunk=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
FDNODE=$build/node/fdnode FDSTORE=$build/storage/fdstore PULL=$build/tests/node/nd_pull
for b in "$FDNODE" "$FDSTORE" "$PULL"; do
  [ -x "$b" ] || { echo "bench.sh: $b not built (./scripts/build.sh release)" >&2; exit 1; }
done
T=$(mktemp -d "$dir/fdist-engines-bench.XXXXXX")
node_pid= iperf_pid=
cleanup() {
  [ -n "$node_pid" ] && kill -TERM "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null
  [ -n "$iperf_pid" ] && kill "$iperf_pid" 2>/dev/null && wait "$iperf_pid" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT INT TERM

echo "machine: $(uname -r), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "version: $size MiB in $chunk chunks, data dir under $dir; $pullers pullers x $conns connections each"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/cluster.key"
"$FDSTORE" keygen "$T/admin.pem" "$T/admin.pub" >/dev/null
head -c $((size * 1024 * 1024)) /dev/urandom >"$T/src"
"$FDSTORE" manifest "$T/src" --name big --version 1 --key "$T/admin.pem" --chunk-size "$chunk" \
  -o "$T/m" >/dev/null
"$FDSTORE" ingest "$T/data" "$T/m" "$T/src" --pub "$T/admin.pub" >/dev/null 2>&1
rm -f "$T/src"
bytes=$((pullers * conns * size * 1024 * 1024))

cpu_s() { # utime + stime of a pid, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

run() { # threads -> "gbps cpu_s"
  # Port 0: the node reports the port it got in its port file.
  rm -f "$T/node.port"
  "$FDNODE" -s node.id=bench -s node.listen=127.0.0.1:0 -s node.port_file="$T/node.port" \
    -s node.data_dir="$T/data" \
    -s node.cluster_key_file="$T/cluster.key" -s node.admin_pub_file="$T/admin.pub" \
    -s node.threads="$1" -s node.chunk_buf="$chunk" -s node.log_level=warn 2>>"$T/node.log" &
  node_pid=$!
  until [ -s "$T/node.port" ]; do
    kill -0 "$node_pid" 2>/dev/null || { echo "bench.sh: fdnode exited at start:" >&2; tail -n 5 "$T/node.log" >&2; exit 1; }
    sleep 0.05
  done
  local port
  port=$(cat "$T/node.port")
  local t0 t1 i pids=()
  t0=$(date +%s.%N)
  for i in $(seq 1 "$pullers"); do
    "$PULL" --node "127.0.0.1:$port" --cluster-key "$T/cluster.key" --admin-pub "$T/admin.pub" \
      --name big --version 1 --conns "$conns" --chunk-size "$chunk" --no-verify >/dev/null &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || { echo "bench.sh: a puller failed" >&2; exit 1; }; done
  t1=$(date +%s.%N)
  local cpu
  cpu=$(cpu_s "$node_pid")
  kill -TERM "$node_pid"
  wait "$node_pid" || { echo "bench.sh: fdnode exited $? on SIGTERM" >&2; exit 1; }
  node_pid=
  echo "$(echo "scale=2; $bytes * 8 / ($t1 - $t0) / 1000000000" | bc) $cpu"
}

ref=-
if command -v iperf3 >/dev/null; then
  port=$((30000 + RANDOM % 20000)) # iperf3 cannot listen on port 0 and report it
  iperf3 -s -p "$port" >/dev/null 2>&1 &
  iperf_pid=$!
  sleep 0.3
  ref=$(iperf3 -c 127.0.0.1 -p "$port" -P "$pullers" -t 3 -f g 2>/dev/null |
    awk '/SUM.*receiver/ { print $6 }')
  kill "$iperf_pid" 2>/dev/null && wait "$iperf_pid" 2>/dev/null || true
  iperf_pid=
  echo "iperf3 -P $pullers over loopback: $ref Gbit/s"
fi
printf '%-6s %-8s %-10s %-10s %-14s\n' round threads Gbit/s vs_iperf3 "node CPU s/GiB"
for r in $(seq 1 "$rounds"); do
  for th in $threads; do
    read -r g c < <(run "$th")
    ratio=-
    [ "$ref" != - ] && ratio=$(echo "scale=2; $g / $ref" | bc)
    printf '%-6s %-8s %-10s %-10s %-14s\n' "$r" "$th" "$g" "$ratio" \
      "$(echo "scale=3; $c / ($bytes / 1073741824)" | bc)"
  done
done
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
