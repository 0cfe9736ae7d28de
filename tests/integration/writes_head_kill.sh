#!/usr/bin/env bash
# The origin head SIGKILLed while 8 writers append, and restarted: the
# writers lose their connection (libfdclient sends the changes in flight
# again, with their client_seq, until the head is back: issue 22; none is
# reported acknowledged before it is, none applied twice), the head takes back from the
# origin after it the records it lost (ordered, synced there, never synced
# here) before it orders anything new, new changes are acknowledged again,
# and a bump merges the log on every origin to the same bytes: every node
# ends with that file, and every change ever acknowledged is in it at its
# offset. A bump runs when the head dies (its merge may be under way, or
# done and not committed). (Promoting another origin is issue 22.)
. "$(dirname "$0")/lib.sh" "$1"
WRITER=$IT_BUILD/tests/integration/it_writer
it_require_cluster
it_require "$WRITER"
it_init writes_head_kill 300
IT_ORIGIN_INI=$'bump_changes = 0\nbump_bytes = 0\nbump_interval_s = 0'
it_cluster 3 2 1 2

WRITERS=8 COUNT=30000
for w in $(seq 1 $WRITERS); do
  "$WRITER" write "$(it_origin_addrs)" "$IT_DIR/cluster.key" \
    "$IT_DIR/writer.pem,$IT_DIR/writer.cert" f.img "$w" "$COUNT" 300 \
    >"$IT_DIR/w$w.out" 2>"$IT_DIR/w$w.err" &
  wpid[w]=$!
done
at=${IT_KILL_AT:-$((5 + RANDOM % 50))}
want=$((WRITERS * COUNT * at / 100))
it_log "will SIGKILL the head o1 once ${at}% of the changes are acknowledged, a bump under way"
until [ "$(cat "$IT_DIR"/w*.out | grep -c '^ack')" -ge $((want / 2)) ]; do sleep 0.02; done
it_writer bump f.img >"$IT_DIR/bump1.out" 2>&1 & # the head may die before it commits
bpid=$!
until [ "$(cat "$IT_DIR"/w*.out | grep -c '^ack')" -ge "$want" ]; do sleep 0.02; done
it_stop o1 KILL
it_log "o1 killed"
sleep 1
it_start_node o1
it_wait_up o1 20
it_log "o1 restarted: the writers' changes go to it again"
for w in $(seq 1 $WRITERS); do wait "${wpid[w]}" || true; done
acked=$(cat "$IT_DIR"/w*.out | grep -c '^ack')
unknown=$(cat "$IT_DIR"/w*.out | grep -c '^unknown' || true)
refused=$(cat "$IT_DIR"/w*.out | grep -c '^fail' || true)
# (refused: sent after the kill, to an origin that is not the head)
it_log "the writers ended: $acked acknowledged, $unknown with an unknown outcome, $refused refused"

wait "$bpid" && it_log "bump before the kill: $(cat "$IT_DIR/bump1.out")" ||
  it_log "bump before the kill ended with the head: $(tail -n 1 "$IT_DIR/bump1.out")"
# New changes after the restart: acknowledged (the head first compares its
# logs with o2's; until then it asks writers to try again).
"$WRITER" write "$(it_origin_addrs)" "$IT_DIR/cluster.key" \
  "$IT_DIR/writer.pem,$IT_DIR/writer.cert" f.img 9 5000 300 \
  >"$IT_DIR/w9.out" 2>"$IT_DIR/w9.err" || it_fail "writes after the restart failed: $(tail -n 2 "$IT_DIR/w9.err")"
grep -q "catch-up: took f.img v[0-9]*'s changes" "$IT_DIR/o1.log" &&
  it_log "o1 took back from o2 the changes it lost: $(grep -o "catch-up: took f.img v[0-9]*'s changes.*" "$IT_DIR/o1.log" | head -n 1)"
out=$(it_writer bump f.img 2>&1) || it_fail "the bump failed: $out"
it_log "$out"
v=$(echo "$out" | sed -n 's/.*version \([0-9]*\) committed.*/\1/p')
[ -n "$v" ] || it_fail "no version in the bump's answer"

sha=$(it_sha "$IT_DIR/o1/f.img/v$v")
for o in o2 o3; do
  until=$((SECONDS + 60))
  until [ -f "$IT_DIR/$o/f.img/v$v" ]; do
    [ $SECONDS -lt $until ] || it_fail "$o does not hold v$v"
    sleep 0.2
  done
  [ "$(it_sha "$IT_DIR/$o/f.img/v$v")" = "$sha" ] || it_fail "$o's v$v differs from o1's"
done
it_wait_current f.img "$sha" 120
cat "$IT_DIR"/w*.out | "$WRITER" check "$IT_DIR/n1/f.img/current" >&2 ||
  it_fail "an acknowledged change is missing from v$v"
it_log "v$v: the same on o1 o2 o3 and all ${#IT_NODES[@]} nodes, every acknowledged change in it"
echo "PASS writes_head_kill"
