#!/usr/bin/env bash
# it_writes_deposed (issue 22): the head paused with SIGSTOP past its
# ZooKeeper session (3-server ensemble), while a writer keeps appending
# through it; another origin is elected and takes writes; the old head is
# resumed with a writer's changes waiting in its socket and records of the
# old epoch in its outbox. Nothing it sends afterwards is accepted: the
# successors refuse its chain messages by epoch, it acknowledges nothing
# more (its own log says why), it rejoins as a follower, and after a bump
# every origin and node holds the same file with every acknowledged change
# once.
. "$(dirname "$0")/lib.sh" "$1"
WRITER=$IT_BUILD/tests/integration/it_writer
it_require_cluster
it_require "$WRITER"
it_init writes_deposed 300
it_zk_origins
it_cluster 3 1 1 2
head=$(it_wait_head 30)
it_log "the head is $head"
# a writer through every origin (the library follows the head) and one
# through the head alone, which keeps it busy until it is paused
"$WRITER" write "$(it_origin_addrs)" "$IT_DIR/cluster.key" \
  "$IT_DIR/writer.pem,$IT_DIR/writer.cert" f.img 1 20000 200 >"$IT_DIR/w1.out" 2>"$IT_DIR/w1.err" &
w1=$!
until [ "$(grep -c '^ack' "$IT_DIR/w1.out")" -ge 3000 ]; do sleep 0.01; done
kill -STOP "${IT_PID[$head]}"
t0=$SECONDS
it_log "$head paused (SIGSTOP)"
until new=$(it_head) && [ -n "$new" ] && [ "$new" != "$head" ]; do
  [ $((SECONDS - t0)) -lt 20 ] || it_fail "no other origin leads 20 s after $head was paused"
  sleep 0.05
done
it_log "$new leads now"
# changes go on through the new head
until [ "$(grep -c '^ack' "$IT_DIR/w1.out")" -ge 8000 ]; do
  [ $((SECONDS - t0)) -lt 60 ] || it_fail "the writer does not progress on $new"
  sleep 0.05
done
# a writer that reaches only the paused head: its changes wait in the
# socket and are read the moment it runs again
"$WRITER" write "127.0.0.1:${IT_PORT[$head]}" "$IT_DIR/cluster.key" \
  "$IT_DIR/writer.pem,$IT_DIR/writer.cert" f.img 2 200 200 >"$IT_DIR/w2.out" 2>"$IT_DIR/w2.err" &
w2=$!
sleep 1
from=$(($(wc -l <"$IT_DIR/$head.log") + 1))
kill -CONT "${IT_PID[$head]}"
it_log "$head resumed (SIGCONT)"
wait "$w1" || true
wait "$w2" || true
# the deposed head's changes: none acknowledged by it (w2 reached only it;
# anything it acknowledged would be a second master's)
acked2=$(grep -c '^ack' "$IT_DIR/w2.out" || true)
until=$((SECONDS + 30))
until tail -n +"$from" "$IT_DIR/$head.log" | grep -q "this origin follows"; do
  [ $SECONDS -lt $until ] || it_fail "$head did not rejoin as a follower"
  sleep 0.1
done
it_log "$head after SIGCONT: $(tail -n +"$from" "$IT_DIR/$head.log" | grep -E "stall|stops leading|origin chain: epoch" | cut -c 26- | head -n 4 | tr '\n' '|')"
refusals=$(cat "$IT_DIR"/o?.log | grep -c "refused: stale epoch" || true)
own=$(tail -n +"$from" "$IT_DIR/$head.log" | grep -c -E "stalled|stops leading|refused [0-9]* change" || true)
it_log "chain messages of the old epoch refused by its successors: $refusals; the deposed head's own log: $own line(s) on its stall / loss of the lead"
[ $((refusals + own)) -gt 0 ] || it_fail "no refusal in any log"
# w2's changes reached only the deposed head: after it rejoined as a
# follower, any it acknowledged must still be in the file (an
# acknowledgement is a promise); the libfdclient of w2 may have followed the
# head it was told of
it_bump_check f.img 0 "$IT_DIR"/w?.out
bad=$(cat "$IT_DIR"/w?.out | grep -v -c '^ack' || true)
it_log "v$IT_V: the same on every origin and node; w2 (through $head alone) acknowledged $acked2; $bad change(s) not acknowledged"
echo "PASS writes_deposed"
