#!/usr/bin/env bash
# Two files on one cluster (3 origins, 8 nodes): versions of a.img and b.img published one at a time, interleaved (a v1, b v1, a v2, b v2, a v3), each reaching every node without the other file's newest leaving it; then a.img v4 and b.img v3 published at the same moment: every node ends with both newest versions.
. "$(dirname "$0")/lib.sh" "$1"
it_require_cluster
it_init two_files 300
it_cluster 3 2 2 2

declare -A newest=() # file -> SHA-256 of its newest published version
declare -A ver=()    # file -> its newest version number
src() { echo "$IT_DIR/src-$1"; }

# next_version FILE: the source of FILE's next version (4 MiB of random bytes
# the first time, then 10% of its 256 KiB chunks rewritten).
next_version() {
  if [ -e "$(src "$1")" ]; then it_mutate "$(src "$1")" 10; else it_make_file "$(src "$1")" 4; fi
  ver[$1]=$((${ver[$1]:-0} + 1))
  newest[$1]=$(it_sha "$(src "$1")")
}

# both_newest SECONDS: every node holds the newest of both files (of those
# published so far).
both_newest() {
  local f
  for f in "${!newest[@]}"; do it_wait_current "$f" "${newest[$f]}" "$1"; done
}

# 1. One publish at a time, the files interleaved. After each, every node
# holds it and still holds the other file's newest.
for f in a.img b.img a.img b.img a.img; do
  next_version "$f"
  it_log "publishing $f v${ver[$f]}"
  it_publish "$(src "$f")" "$f" || it_fail "publish $f v${ver[$f]} exited $?"
  it_wait_current "$f" "${newest[$f]}" 60
  both_newest 10
  it_log "every node holds $f v${ver[$f]} and the other file's newest"
done

# 2. Both files at once: a.img v4 and b.img v3, published side by side.
next_version a.img
next_version b.img
it_log "publishing a.img v${ver[a.img]} and b.img v${ver[b.img]} at the same time"
it_publish "$(src a.img)" a.img >"$IT_DIR/publish-a.out" 2>&1 &
pa=$!
it_publish "$(src b.img)" b.img >"$IT_DIR/publish-b.out" 2>&1 &
pb=$!
rc_a=0 rc_b=0
wait $pa || rc_a=$?
wait $pb || rc_b=$?
[ $rc_a -eq 0 ] || it_fail "publish a.img v${ver[a.img]} exited $rc_a: $(tail -n 3 "$IT_DIR/publish-a.out")"
[ $rc_b -eq 0 ] || it_fail "publish b.img v${ver[b.img]} exited $rc_b: $(tail -n 3 "$IT_DIR/publish-b.out")"
both_newest 60
for id in "${IT_NODES[@]}"; do
  [ "$(readlink "$IT_DIR/$id/a.img/current")" = "v${ver[a.img]}" ] || it_fail "$id: a.img current is not v${ver[a.img]}"
  [ "$(readlink "$IT_DIR/$id/b.img/current")" = "v${ver[b.img]}" ] || it_fail "$id: b.img current is not v${ver[b.img]}"
done
it_log "every node holds a.img v${ver[a.img]} and b.img v${ver[b.img]}"
echo "PASS two_files"
