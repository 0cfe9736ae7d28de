#!/usr/bin/env bash
# it_writes_failover (issue 22): the origin head elected through a real
# 3-server ZooKeeper ensemble, SIGKILLed while 8 writers append. Another
# origin leads within 5 s (the time from the kill to the first change the
# new head acknowledges is printed), the writers' changes in flight are sent
# again by libfdclient and applied once, the old head restarted rejoins as a
# follower and is caught up, and after a bump every origin and every node
# holds the same file, equal to the model built from every acknowledged
# change (none lost, none twice).
. "$(dirname "$0")/lib.sh" "$1"
WRITER=$IT_BUILD/tests/integration/it_writer
it_require_cluster
it_require "$WRITER"
it_init writes_failover 400
it_zk_origins
it_cluster 3 2 1 2
head=$(it_wait_head 30)
it_log "the elected head is $head"

WRITERS=8 COUNT=${IT_COUNT:-20000}
for w in $(seq 1 $WRITERS); do
  "$WRITER" write "$(it_origin_addrs)" "$IT_DIR/cluster.key" \
    "$IT_DIR/writer.pem,$IT_DIR/writer.cert" f.img "$w" "$COUNT" 300 \
    >"$IT_DIR/w$w.out" 2>"$IT_DIR/w$w.err" &
  wpid[w]=$!
done
want=$((WRITERS * COUNT / 4))
until [ "$(cat "$IT_DIR"/w*.out | grep -c '^ack')" -ge "$want" ]; do sleep 0.02; done
printf 'probe' >"$IT_DIR/probe.bin"
t0=$(date +%s%N)
it_stop "$head" KILL
it_log "$head (the head) SIGKILLed after $want acknowledged changes"
# The first change acknowledged after the kill: fdadmin append retries on
# whichever origin leads next (libfdclient).
# (a refusal, "not the head" before the election, is tried again)
until it_writer append f.img "$IT_DIR/probe.bin" >"$IT_DIR/probe.out" 2>&1; do
  [ $((($(date +%s%N) - t0) / 1000000)) -lt 15000 ] ||
    it_fail "no change acknowledged 15 s after the head's death: $(tail -n 2 "$IT_DIR/probe.out")"
  grep -q "0 changes, 0 bytes acknowledged" "$IT_DIR/probe.out" ||
    it_fail "the probe's outcome is unknown: $(tail -n 2 "$IT_DIR/probe.out")"
  sleep 0.05
done
t1=$(date +%s%N)
failover_ms=$(((t1 - t0) / 1000000))
new=$(it_wait_head 10)
it_log "FAILOVER $head -> $new: first change acknowledged by the new head ${failover_ms} ms after the kill"
[ "$new" != "$head" ] || it_fail "the dead head still leads"
[ "$failover_ms" -le 5000 ] || it_fail "writes resumed after ${failover_ms} ms (want <= 5000)"

for w in $(seq 1 $WRITERS); do wait "${wpid[w]}" || true; done
acked=$(cat "$IT_DIR"/w*.out | grep -c '^ack')
lost=$(cat "$IT_DIR"/w*.out | grep -c -v '^ack' || true)
it_log "the writers ended: $acked acknowledged, $lost not"
[ "$lost" -eq 0 ] || it_fail "$lost change(s) not acknowledged: $(cat "$IT_DIR"/w*.out | grep -v '^ack' | head -n 3)"

it_start_node "$head"
it_wait_up "$head" 20
until=$((SECONDS + 60))
until tail -n +"${IT_LOG_FROM[$head]}" "$IT_DIR/$head.log" | grep -q "origin chain: epoch [0-9]*, .*this origin follows"; do
  [ $SECONDS -lt $until ] || it_fail "$head did not rejoin as a follower"
  sleep 0.1
done
it_log "$head rejoined: $(tail -n +"${IT_LOG_FROM[$head]}" "$IT_DIR/$head.log" | grep -o "origin chain: epoch.*" | tail -n 1)"

# every acknowledged append once, plus the probe's 5 bytes
it_bump_check f.img 5 "$IT_DIR"/w*.out
it_log "v$IT_V: the same on every origin and all ${#IT_NODES[@]} nodes; $acked + 1 acknowledged changes, each once ($IT_SIZE bytes)"
echo "PASS writes_failover"
