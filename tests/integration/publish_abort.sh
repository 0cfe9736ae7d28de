#!/usr/bin/env bash
# A publish that dies mid-stream (fdadmin SIGKILLed) while the nodes already fetch the pending version: fdsched aborts it, no node makes it current, and the next publish of that number reaches every node.
. "$(dirname "$0")/lib.sh" "$1"
it_require_cluster
it_init publish_abort 180
IT_CHUNK=64K
it_cluster 3 2 1 2

it_make_file "$IT_DIR/src1" 4
sha1=$(it_sha "$IT_DIR/src1")
it_publish "$IT_DIR/src1" big.img || it_fail "publish v1 exited $?"
it_wait_current big.img "$sha1" 60

# v2: kill fdadmin as soon as any node holds a chunk of it (the nodes fetch
# while the publish runs, so this is well before the publish could end).
it_make_file "$IT_DIR/src2" 128
it_publish "$IT_DIR/src2" big.img 2>"$IT_DIR/publish2.err" &
pub=$!
fetching=
until=$((SECONDS + 60))
while [ -z "$fetching" ] && kill -0 $pub 2>/dev/null && [ $SECONDS -lt $until ]; do
  for id in "${IT_NODES[@]}"; do
    b=$(it_bitmap_bits "$id" big.img 2)
    if [ -n "$b" ] && [ "$b" -gt 0 ]; then fetching=$id; break; fi
  done
  [ -n "$fetching" ] || sleep 0.005
done
[ -n "$fetching" ] || it_fail "no node fetched v2 while its publish ran"
# $pub is the subshell running it_publish; fdadmin is its child.
kill -KILL $(pgrep -P $pub) $pub 2>/dev/null || true
rc=0
wait $pub 2>/dev/null || rc=$?
[ $rc -ne 0 ] || it_fail "the publish completed before it could be killed (file too small?)"
it_log "fdadmin killed while $fetching held $(it_bitmap_bits "$fetching" big.img 2) chunks of v2"

# fdsched hears the abort from the head, and every node drops v2.
until=$((SECONDS + 30))
until grep -q 'big.img v2 aborted' "$IT_DIR/sched.log"; do
  [ $SECONDS -lt $until ] || it_fail "fdsched never aborted v2"
  sleep 0.1
done
for id in "${IT_NODES[@]}"; do
  until grep -q 'big.img v2: its publish was aborted' "$IT_DIR/$id.log"; do
    [ $SECONDS -lt $until ] || it_fail "$id never dropped the aborted v2"
    sleep 0.1
  done
done
sleep 1
for id in "${IT_NODES[@]}" "${IT_ORIGINS[@]}"; do
  [ -e "$IT_DIR/$id/big.img/v2" ] && it_fail "$id holds a complete v2 of an aborted publish"
done
for id in "${IT_NODES[@]}"; do
  [ "$(readlink "$IT_DIR/$id/big.img/current")" = v1 ] || it_fail "$id's current is not v1"
  [ "$(it_node_sha "$id" big.img)" = "$sha1" ] || it_fail "$id's current changed"
done
it_log "v2 aborted: every node still serves v1"

# The number is published again, with other bytes, and reaches everyone.
it_make_file "$IT_DIR/src3" 8
sha3=$(it_sha "$IT_DIR/src3")
it_publish "$IT_DIR/src3" big.img || it_fail "publish of v2 again exited $?"
it_wait_current big.img "$sha3" 60
for id in "${IT_NODES[@]}"; do
  [ "$(readlink "$IT_DIR/$id/big.img/current")" = v2 ] || it_fail "$id's current is not v2"
done
it_log "v2 published again after the abort: every node holds the new bytes"
echo "PASS publish_abort"
