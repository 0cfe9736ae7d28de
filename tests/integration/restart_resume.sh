#!/usr/bin/env bash
# A node SIGKILLed mid-transfer resumes from its durable bitmap when restarted, and a node that was down during a publish catches up when it returns.
. "$(dirname "$0")/lib.sh" "$1"
it_require_cluster
it_init restart_resume 180
IT_CHUNK=64K
it_cluster 3 2 2 2

it_make_file "$IT_DIR/src" 48
sha1=$(it_sha "$IT_DIR/src")
# Nodes fetch while the publish runs (the version is pending until every
# origin holds it), so the victim is looked for during the publish.
it_publish "$IT_DIR/src" big.img &
pub=$!

# 1. Kill a node once some of its chunks are durable but not all.
victim=
until=$((SECONDS + 30))
while [ -z "$victim" ] && [ $SECONDS -lt $until ]; do
  for id in "${IT_NODES[@]}"; do
    [ -e "$IT_DIR/$id/big.img/current" ] && continue
    b=$(it_bitmap_bits "$id" big.img 1)
    if [ -n "$b" ] && [ "$b" -gt 0 ]; then
      kill -KILL "${IT_PID[$id]}"
      victim=$id
      break
    fi
  done
  [ -n "$victim" ] || sleep 0.01
done
[ -n "$victim" ] || it_fail "no node caught with a partial version"
it_stop "$victim" KILL
wait "$pub" || it_fail "publish v1 exited $?"
[ -e "$IT_DIR/$victim/big.img/current" ] && it_fail "$victim completed before the kill landed"
had=$(it_bitmap_bits "$victim" big.img 1)
it_log "$victim killed holding ${had:-no bitmap,} durable chunks of v1"
[ -n "$had" ] && [ "$had" -gt 0 ] || it_fail "$victim's bitmap lost its bits at the kill"

# Restart it; the bitmap may only grow until the version completes.
it_start_node "$victim"
low=$had
while [ ! -e "$IT_DIR/$victim/big.img/current" ] && [ $SECONDS -lt $((until + 60)) ]; do
  b=$(it_bitmap_bits "$victim" big.img 1)
  if [ -n "$b" ] && [ "$b" -lt "$low" ]; then low=$b; fi
  sleep 0.02
done
[ "$low" -ge "$had" ] || it_fail "$victim started over: its bitmap fell from $had to $low chunks"
it_wait_current big.img "$sha1" 60
it_log "$victim resumed from $had chunks and completed; every node holds v1"

# 2. A node down (SIGTERM) during the next publish catches up on return.
down=${IT_NODES[0]}
[ "$down" = "$victim" ] && down=${IT_NODES[1]}
it_stop "$down" TERM
it_mutate "$IT_DIR/src" 5
sha2=$(it_sha "$IT_DIR/src")
it_publish "$IT_DIR/src" big.img || it_fail "publish v2 exited $?"
others=()
for id in "${IT_NODES[@]}"; do [ "$id" = "$down" ] || others+=("$id"); done
it_wait_current big.img "$sha2" 60 "${others[@]}"
[ "$(it_node_sha "$down" big.img)" = "$sha1" ] || it_fail "$down changed while it was down"
it_start_node "$down"
it_wait_current big.img "$sha2" 60 "$down"
it_log "$down was down during v2's publish and caught up on return"
echo "PASS restart_resume"
