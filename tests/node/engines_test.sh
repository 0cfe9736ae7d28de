#!/usr/bin/env bash
# fdnode with threads = 2: both engines of the nodes serve children verified bytes, every node's current has the source's SHA-256, SIGTERM stops every engine, and restarted nodes serve from their files on both engines.
. "$(dirname "$0")/../integration/lib.sh" "$1"
PULL=$IT_BUILD/tests/node/nd_pull
it_require_cluster
it_require "$PULL"
it_init engines 150
export IT_THREADS=2 # read by lib.sh
it_cluster 3 2 2 2

for id in "${IT_NODES[@]}"; do
  grep -q "2 engines serve port ${IT_PORT[$id]}" "$IT_DIR/$id.log" || it_fail "$id does not run 2 engines"
done
for id in "${IT_ORIGINS[@]}"; do
  grep -q "engines serve port" "$IT_DIR/$id.log" && it_fail "origin $id runs serving engines"
done

# 1. A publish spreads through the trees; children's connections land on
# either engine of their parents (SO_REUSEPORT).
it_make_file "$IT_DIR/src" 24
sha=$(it_sha "$IT_DIR/src")
it_publish "$IT_DIR/src" big.img || it_fail "publish exited $?"
it_wait_current big.img "$sha" 60
it_log "all ${#IT_NODES[@]} nodes hold big.img v1"

# What each engine sent, from the lines every engine logs when it stops.
# engine_sent ID N FROM_LINE: bytes engine N of ID sent after line FROM_LINE.
engine_sent() {
  tail -n +"$3" "$IT_DIR/$1.log" | sed -n "s/.*engine $2 stopped: sent \([0-9]*\) bytes.*/\1/p" | tail -1
}
stop_all_nodes() {
  local id
  for id in "${IT_NODES[@]}"; do it_stop "$id"; done # SIGTERM, exit 0 required
}
declare -A FROM=()
for id in "${IT_NODES[@]}"; do FROM[$id]=1; done
stop_all_nodes
e0=0 e1=0 both=0
for id in "${IT_NODES[@]}"; do
  a=$(engine_sent "$id" 0 1) b=$(engine_sent "$id" 1 1)
  [ -n "$a" ] && [ -n "$b" ] || it_fail "$id: an engine did not log its stop"
  it_log "$id: engine 0 sent $a bytes, engine 1 sent $b bytes"
  e0=$((e0 + a)) e1=$((e1 + b))
  [ "$a" -gt 0 ] && [ "$b" -gt 0 ] && both=$((both + 1))
done
[ "$e1" -gt 0 ] || it_fail "no serving engine sent anything"
[ "$e0" -gt 0 ] || it_fail "no engine 0 sent anything"
it_log "fan-out: engines 0 sent $e0 bytes, engines 1 sent $e1 bytes; $both nodes served on both"
grep -h "rejected\|not stored\|bad CRC32C" "$IT_DIR"/n*.log && it_fail "a chunk failed verification"

# 2. Restarted, the nodes hold v1 complete and have not opened it: a child
# landing on engine 1 is served from the files (manifest checked against the
# admin key), one on engine 0 through storage. 16 connections to one node
# spread over both engines; every chunk is checked against the signed
# manifest by the puller.
for id in "${IT_NODES[@]}"; do FROM[$id]=$(($(wc -l <"$IT_DIR/$id.log") + 1)); it_start_node "$id"; done
for id in "${IT_NODES[@]}"; do it_wait_up "$id" 20; done
target=${IT_NODES[0]}
out=$("$PULL" --node "127.0.0.1:${IT_PORT[$target]}" --cluster-key "$IT_DIR/cluster.key" \
  --admin-pub "$IT_DIR/admin.pub" --name big.img --version 1 --conns 16 --chunk-size "$IT_CHUNK") ||
  it_fail "nd_pull from $target failed"
it_log "$out"
want=$((16 * $(stat -c %s "$IT_DIR/src")))
echo "$out" | grep -q " $want bytes verified" || it_fail "nd_pull verified other than $want bytes"
it_stop "$target"
a=$(engine_sent "$target" 0 "${FROM[$target]}") b=$(engine_sent "$target" 1 "${FROM[$target]}")
it_log "$target after restart: engine 0 sent $a bytes, engine 1 sent $b bytes"
[ -n "$a" ] && [ -n "$b" ] || it_fail "$target: an engine did not log its stop"
[ "$a" -gt 0 ] && [ "$b" -gt 0 ] || it_fail "16 connections did not reach both engines of $target"
[ $((a + b)) -ge "$want" ] || it_fail "$target's engines sent $((a + b)) bytes, less than $want"
echo "PASS engines"
