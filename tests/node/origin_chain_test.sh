#!/usr/bin/env bash
# The origin chain with real fdnode processes on loopback: a publish lands durably on all 3 origins, a second one sends only the changed chunks, a dead tail is dropped and never acknowledged, a bad version number is refused.
set -u
B=${1:?build dir}
FDNODE=$B/node/fdnode PUB=$B/tests/node/fdnode_pub FDSTORE=$B/storage/fdstore
[ -x "$FDNODE" ] && [ -x "$PUB" ] || { echo "missing binaries"; exit 1; }
T=$(mktemp -d /tmp/fdnode-chain.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$T"/*.log; do echo "== $f"; tail -20 "$f"; done; exit 1; }

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$T/cluster.key"
"$FDSTORE" keygen "$T/admin.pem" "$T/admin.pub" >/dev/null || fail keygen
# Every origin listens on port 0 and writes the port it got to o<i>.port. No
# scheduler here, so each origin needs the addresses of the origins after it
# in the chain: they start tail first, and the ones before stay bare ids.
declare -A port=()
start_origin() { # i ORIGINS
  local i=$1
  rm -f "$T/o$i.port"
  "$FDNODE" -s node.id=o$i -s node.role=origin -s node.listen=127.0.0.1:0 \
    -s node.port_file="$T/o$i.port" \
    -s node.data_dir="$T/o$i" -s node.cluster_key_file="$T/cluster.key" \
    -s node.admin_pub_file="$T/admin.pub" -s node.origins="$2" \
    -s node.chunk_buf=1M -s node.pool_buffers=32 -s node.scrub_interval_s=1 2>>"$T/o$i.log" &
  pids[$i]=$!
  for _ in $(seq 1 200); do
    [ -s "$T/o$i.port" ] && { port[$i]=$(cat "$T/o$i.port"); return 0; }
    kill -0 "${pids[$i]}" 2>/dev/null || fail "o$i exited at start"
    sleep 0.05
  done
  fail "o$i wrote no port file in 10 s"
}
start_origin 3 "o1,o2,o3"
start_origin 2 "o1,o2,o3@127.0.0.1:${port[3]}"
start_origin 1 "o1,o2@127.0.0.1:${port[2]},o3@127.0.0.1:${port[3]}"
pub() { timeout 60 "$PUB" --head 127.0.0.1:${port[1]} --cluster-key "$T/cluster.key" \
          --admin-key "$T/admin.pem" --chunk-size 1M --name data "$@"; }

head -c $((24 * 1024 * 1024 + 12345)) /dev/urandom > "$T/src"
out=$(pub "$T/src") || fail "publish v1: $out"
echo "$out"
echo "$out" | grep -q "v1 .*origins o1,o2,o3" || fail "v1 not on all origins: $out"
want=$(sha256sum < "$T/src" | cut -d' ' -f1)
for i in 1 2 3; do
  got=$(sha256sum < "$T/o$i/data/current" | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "o$i current differs"
done

# Scrub: a chunk rotting on o3's disk is found and reported; v2's delta on o3
# will not reuse it (the chain sends it).
printf 'rot' | dd of="$T/o3/data/v1" bs=1 seek=100 conv=notrunc 2>/dev/null
for _ in $(seq 1 50); do grep -q "scrub: data v1 chunk 0 is bad" "$T/o3.log" && break; sleep 0.1; done
grep -q "scrub: data v1 chunk 0 is bad" "$T/o3.log" || fail "scrub did not report the bad chunk"

# v2: one chunk changed; only it crosses the network.
printf 'changed!' | dd of="$T/src" bs=1 seek=$((5 * 1024 * 1024 + 7)) conv=notrunc 2>/dev/null
out=$(pub "$T/src") || fail "publish v2: $out"
echo "$out"
echo "$out" | grep -q "v2 sent 1048576 bytes (1 of 25 chunks) origins o1,o2,o3" || fail "v2 delta: $out"
want=$(sha256sum < "$T/src" | cut -d' ' -f1)
for i in 1 2 3; do
  got=$(sha256sum < "$T/o$i/data/current" | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "o$i v2 current differs"
done

# The tail dies: v3 is acknowledged by the origins that hold it, and only them.
kill -9 "${pids[3]}"
head -c $((3 * 1024 * 1024)) /dev/urandom >> "$T/src"
out=$(pub "$T/src") || fail "publish v3: $out"
echo "$out"
echo "$out" | grep -q "v3 .*origins o1,o2$" || fail "v3 origins: $out"
want=$(sha256sum < "$T/src" | cut -d' ' -f1)
for i in 1 2; do
  got=$(sha256sum < "$T/o$i/data/current" | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "o$i v3 current differs"
done
grep -q "origin o3 dropped from the chain" "$T/o2.log" || fail "o3 drop not logged"

# SIGTERM: clean exit 0.
kill -TERM "${pids[1]}"
wait "${pids[1]}"; rc=$?
[ $rc -eq 0 ] || fail "o1 exit $rc after SIGTERM"
echo "PASS"
