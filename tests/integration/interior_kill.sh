#!/usr/bin/env bash
# An interior node of a stripe tree (one serving children) is SIGKILLed mid-transfer: every other node still completes with the source's SHA-256.
. "$(dirname "$0")/lib.sh" "$1"
it_require_cluster
it_init interior_kill 150
IT_CHUNK=64K
it_cluster 3 2 2 3

it_make_file "$IT_DIR/src" 48
sha=$(it_sha "$IT_DIR/src")
# The nodes fetch while the publish runs, so the victim is looked for then.
it_publish "$IT_DIR/src" big.img &
pub=$!

# Catch a node that is serving children while it is itself still incomplete,
# freeze it at once (so its subtree cannot finish meanwhile), then SIGKILL it.
victim=
until=$((SECONDS + 30))
while [ -z "$victim" ] && [ $SECONDS -lt $until ]; do
  for id in $(it_tree_edges | awk '{ print $1 }' | sort -u); do
    [ -e "$IT_DIR/$id/big.img/current" ] && continue
    kill -STOP "${IT_PID[$id]}"
    kids=$(it_tree_edges | awk -v p="$id" '$1 == p { printf "%s ", $2 }')
    had=$(it_bitmap_bits "$id" big.img 1) # empty: not begun, or already complete
    if [ -n "$kids" ] && [ -n "$had" ]; then victim=$id; break; fi
    kill -CONT "${IT_PID[$id]}"
  done
  [ -n "$victim" ] || sleep 0.02
done
[ -n "$victim" ] || it_fail "no interior node caught mid-transfer (did distribution finish in under one poll?)"
incomplete=0
for k in $kids; do [ -e "$IT_DIR/$k/big.img/current" ] || incomplete=$((incomplete + 1)); done
it_log "killing $victim (bitmap $had chunks) while it serves: $kids ($incomplete of them incomplete)"
it_stop "$victim" KILL
wait "$pub" || it_fail "publish exited $?"

others=()
for id in "${IT_NODES[@]}"; do [ "$id" = "$victim" ] || others+=("$id"); done
it_wait_current big.img "$sha" 90 "${others[@]}"
[ -e "$IT_DIR/$victim/big.img/current" ] && it_fail "$victim completed although it was killed"
it_log "all ${#others[@]} other nodes complete after $victim died"
echo "PASS interior_kill"
