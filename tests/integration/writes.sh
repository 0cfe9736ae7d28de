#!/usr/bin/env bash
# The write path end to end: 8 writers append (and now and then overwrite)
# concurrently through the origin head while two bumps happen, then a last
# bump closes the log. Every node ends with the same file, equal to a model
# built from the acknowledged changes in their (version, index) order; every
# version the origins merged equals the model of the changes acknowledged up
# to it, byte for byte, on every origin; no change was refused or lost.
# With `kill` as the second argument, a non-head origin is SIGKILLed at a
# random moment during the writes (after 2-61% of them, so before, between
# or during the bumps' merges) and restarted: it catches up (changes and
# versions it missed) and the same holds for it.
. "$(dirname "$0")/lib.sh" "$1"
mode=${2:-}
WRITER=$IT_BUILD/tests/integration/it_writer
it_require_cluster
it_require "$WRITER"
it_init "writes${mode:+_$mode}" 300
# Only forced bumps, so the test knows how many versions there are; the
# origins keep every version, to compare each with its model.
IT_ORIGIN_INI=$'bump_changes = 0\nbump_bytes = 0\nbump_interval_s = 0\nkeep_versions = 8'${IT_ORIGIN_EXTRA:+$'\n'$IT_ORIGIN_EXTRA}
it_cluster 3 2 1 2

WRITERS=8 COUNT=${IT_WRITES_COUNT:-30000}
start=$SECONDS
for w in $(seq 1 $WRITERS); do
  "$WRITER" write "$(it_origin_addrs)" "$IT_DIR/cluster.key" \
    "$IT_DIR/writer.pem,$IT_DIR/writer.cert" f.img "$w" "$COUNT" 300 7 \
    >"$IT_DIR/w$w.out" 2>"$IT_DIR/w$w.err" &
  wpid[w]=$!
done

bump_start() { # N: fdadmin bump in the background (it waits for the commit)
  it_writer bump f.img >"$IT_DIR/bump$1.out" 2>&1 &
  bpid[$1]=$!
  it_log "bump $1 started"
}
bump_wait() { # N
  wait "${bpid[$1]}" || it_fail "bump $1 failed: $(cat "$IT_DIR/bump$1.out")"
  it_log "bump $1: $(cat "$IT_DIR/bump$1.out")"
}
writing() { local p; for p in "${wpid[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
# wait_acks FRACTION_PERCENT: until that share of all changes is acknowledged
wait_acks() {
  local want=$((WRITERS * COUNT * $1 / 100))
  while [ "$(cat "$IT_DIR"/w*.out 2>/dev/null | grep -c '^ack')" -lt "$want" ]; do
    writing || return 0
    sleep 0.05
  done
}

# The events, by the share of changes acknowledged: bumps at 25% and 50%;
# with `kill`, the victim's SIGKILL anywhere in 2-61% (before, between or
# during the bumps' merges) and its restart 10% later.
events=("25 bump 1" "50 bump 2")
victim=
if [ "$mode" = kill ]; then
  victim=${IT_VICTIM:-o$((2 + RANDOM % 2))}
  at=${IT_KILL_AT:-$((2 + RANDOM % 60))}
  events+=("$at kill" "$((at + 10)) restart")
  it_log "will SIGKILL $victim once ${at}% of the changes are acknowledged"
fi
while read -r at what n; do
  wait_acks "$at"
  case $what in
    bump) writing || it_fail "the writers finished before bump $n"; bump_start "$n" ;;
    kill) it_stop "$victim" KILL; it_log "$victim killed" ;;
    restart) it_start_node "$victim"; it_wait_up "$victim" 20; it_log "$victim restarted" ;;
  esac
done < <(printf '%s\n' "${events[@]}" | sort -n)
bump_wait 1
bump_wait 2
rc=0
for w in $(seq 1 $WRITERS); do
  wait "${wpid[w]}" || { rc=$?; it_log "writer $w exited $rc: $(head -c 400 "$IT_DIR/w$w.err")"; }
done
[ $rc -eq 0 ] || it_fail "a writer had changes refused or lost"
last=$(it_writer bump f.img 2>&1) || it_fail "the last bump failed: $last"
it_log "last bump: $last"
cat "$IT_DIR"/w*.out >"$IT_DIR/acks"
acked=$(grep -c '^ack' "$IT_DIR/acks")
[ "$acked" -eq $((WRITERS * COUNT)) ] || it_fail "$acked of $((WRITERS * COUNT)) changes acknowledged"
versions=$(awk '$1 == "ack" { print $2 }' "$IT_DIR/acks" | sort -nu | tr '\n' ' ')
it_log "$acked changes acknowledged in $((SECONDS - start)) s, in the logs of versions: $versions"
[ "$(echo $versions | wc -w)" -ge 3 ] || it_fail "the changes went into fewer than 3 versions: $versions"

# The model of each version: the changes acknowledged into it and before.
newest=$(echo $versions | awk '{ print $NF }')
for v in $versions; do
  awk -v v="$v" '$1 == "ack" && $2 <= v' "$IT_DIR/acks" |
    "$WRITER" model - "$IT_DIR/model.v$v" >/dev/null || it_fail "cannot build the model of v$v"
done
sha=$(it_sha "$IT_DIR/model.v$newest")
it_wait_current f.img "$sha" 120
it_log "all ${#IT_NODES[@]} nodes hold v$newest = the model of $acked acknowledged changes ($sha)"

# Every origin holds every version the changes made, each equal to its model.
for o in "${IT_ORIGINS[@]}"; do
  until=$((SECONDS + 60))
  for v in $versions; do
    while [ ! -f "$IT_DIR/$o/f.img/v$v" ]; do
      [ $SECONDS -lt $until ] || it_fail "$o does not hold f.img v$v (holds: $(it_versions_of "$o" f.img | tr '\n' ' '))"
      sleep 0.2
    done
    [ "$(it_sha "$IT_DIR/$o/f.img/v$v")" = "$(it_sha "$IT_DIR/model.v$v")" ] ||
      it_fail "$o's v$v differs from the model of the changes acknowledged up to it"
  done
done
it_log "o1 o2 o3 each hold v$(echo $versions | sed 's/ / v/g'), each equal to its model"
[ -z "$victim" ] || grep -q "caught up\|up to date" "$IT_DIR/$victim.log" ||
  it_log "note: $victim's log does not mention its catch-up"
echo "PASS writes${mode:+ $mode}"
