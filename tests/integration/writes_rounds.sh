#!/usr/bin/env bash
# it_writes_rounds (issue 22): 50 rounds, each killing an origin (SIGKILL)
# while 8 writers append and starting it again: the head on even rounds, a
# random follower on odd ones. Every change is acknowledged (libfdclient
# sends again what was in flight, the heads recognise it); after the last
# round a bump makes one version, the same on every origin and node, holding
# every acknowledged change once: 0 lost, 0 duplicated. Prints the time from
# each head's death to the first change its successor acknowledged, as min /
# median / max over the rounds that killed the head.
. "$(dirname "$0")/lib.sh" "$1"
WRITER=$IT_BUILD/tests/integration/it_writer
it_require_cluster
it_require "$WRITER"
ROUNDS=${IT_ROUNDS:-50}
it_init writes_rounds $((120 + ROUNDS * 14))
it_zk_origins
it_cluster 3 1 1 2
it_wait_head 30 >/dev/null
printf 'probe' >"$IT_DIR/probe.bin"
WRITERS=8 COUNT=${IT_COUNT:-1500}
declare -a times=()
probes=0
for r in $(seq 1 "$ROUNDS"); do
  for w in $(seq 1 $WRITERS); do
    id=$((r * 100 + w))
    "$WRITER" write "$(it_origin_addrs)" "$IT_DIR/cluster.key" \
      "$IT_DIR/writer.pem,$IT_DIR/writer.cert" f.img "$id" "$COUNT" 200 \
      >"$IT_DIR/w$id.out" 2>"$IT_DIR/w$id.err" &
    wpid[w]=$!
  done
  head=$(it_wait_head 30)
  if [ $((r % 2)) -eq 0 ]; then victim=$head; else
    others=()
    for o in "${IT_ORIGINS[@]}"; do [ "$o" = "$head" ] || others+=("$o"); done
    victim=${others[$((RANDOM % ${#others[@]}))]}
  fi
  want=$((WRITERS * COUNT / 3))
  until=$((SECONDS + 60))
  until [ "$(cat "$IT_DIR"/w"${r}"0[1-8].out | grep -c '^ack')" -ge "$want" ]; do
    [ $SECONDS -lt $until ] || it_fail "round $r: the writers do not progress"
    sleep 0.01
  done
  t0=$(date +%s%N)
  it_stop "$victim" KILL
  if [ "$victim" = "$head" ]; then
    until it_writer append f.img "$IT_DIR/probe.bin" >"$IT_DIR/probe.out" 2>&1; do
      [ $((($(date +%s%N) - t0) / 1000000)) -lt 20000 ] ||
        it_fail "round $r: no change acknowledged 20 s after $head's death: $(tail -n 1 "$IT_DIR/probe.out")"
      grep -q "0 changes, 0 bytes acknowledged" "$IT_DIR/probe.out" ||
        it_fail "round $r: the probe's outcome is unknown: $(tail -n 2 "$IT_DIR/probe.out")"
      sleep 0.05
    done
    probes=$((probes + 1))
    times+=($((($(date +%s%N) - t0) / 1000000)))
  fi
  for w in $(seq 1 $WRITERS); do wait "${wpid[w]}" || true; done
  caught=$(cat "$IT_DIR"/o?.log | grep -c "origin $victim is up to date" || true)
  it_start_node "$victim"
  it_wait_up "$victim" 20
  it_log "round $r: killed $victim$([ "$victim" = "$head" ] && echo " (the head; writes resumed after ${times[-1]} ms)"), restarted"
  # the restarted origin is caught up before the next round kills another
  until=$((SECONDS + 60))
  until tail -n +"${IT_LOG_FROM[$victim]}" "$IT_DIR/$victim.log" | grep -q "this origin follows" &&
    [ "$(cat "$IT_DIR"/o?.log | grep -c "origin $victim is up to date" || true)" -gt "$caught" ]; do
    [ $SECONDS -lt $until ] || it_fail "round $r: $victim was not caught up"
    sleep 0.05
  done
done
bad=$(cat "$IT_DIR"/w*.out | grep -v -c '^ack' || true)
acked=$(cat "$IT_DIR"/w*.out | grep -c '^ack')
[ "$bad" -eq 0 ] || it_fail "$bad change(s) not acknowledged: $(cat "$IT_DIR"/w*.out | grep -v '^ack' | head -n 3)"
it_bump_check f.img $((5 * probes)) "$IT_DIR"/w*.out
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
n=${#times[@]}
it_log "FAILOVER over $n head kills: min $(echo "$sorted" | head -n 1) ms, median $(echo "$sorted" | sed -n "$(((n + 1) / 2))p") ms, max $(echo "$sorted" | tail -n 1) ms"
it_log "$ROUNDS rounds: $acked + $probes acknowledged changes, 0 lost, 0 duplicated; v$IT_V the same on every origin and node"
echo "PASS writes_rounds"
