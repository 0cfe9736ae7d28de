#!/usr/bin/env bash
# Two versions published back to back, then a third: every node ends on the newest; older versions are kept or collected by the GC rule (newest 2 complete kept, nothing torn).
. "$(dirname "$0")/lib.sh" "$1"
it_require_cluster
it_init two_versions 150
it_cluster 3 2 2 2

it_make_file "$IT_DIR/src" 16
cp "$IT_DIR/src" "$IT_DIR/v1"
it_mutate "$IT_DIR/src" 10
cp "$IT_DIR/src" "$IT_DIR/v2"
it_mutate "$IT_DIR/src" 10
cp "$IT_DIR/src" "$IT_DIR/v3"
declare -A want=([1]=$(it_sha "$IT_DIR/v1") [2]=$(it_sha "$IT_DIR/v2") [3]=$(it_sha "$IT_DIR/v3"))

# v2 is published while v1 is still spreading.
it_publish "$IT_DIR/v1" f.img || it_fail "publish v1 exited $?"
it_publish "$IT_DIR/v2" f.img || it_fail "publish v2 exited $?"
it_wait_current f.img "${want[2]}" 60
it_log "every node is on v2"
it_publish "$IT_DIR/v3" f.img || it_fail "publish v3 exited $?"
it_wait_current f.img "${want[3]}" 60
it_admin gc f.img --keep 2 >/dev/null || it_fail "fdadmin gc exited $?"
sleep 1

for id in "${IT_ORIGINS[@]}" "${IT_NODES[@]}"; do
  vs=$(it_versions_of "$id" f.img | tr '\n' ' ')
  n=$(echo $vs | wc -w)
  [ "$n" -le 2 ] || it_fail "$id keeps $n complete versions ($vs), the GC rule keeps 2"
  for v in $vs; do
    [ "$(it_sha "$IT_DIR/$id/f.img/v$v")" = "${want[$v]}" ] || it_fail "$id v$v has the wrong bytes"
  done
  [ "$(readlink "$IT_DIR/$id/f.img/current")" = v3 ] || it_fail "$id current is not v3"
done
for o in "${IT_ORIGINS[@]}"; do
  [ -f "$IT_DIR/$o/f.img/v2" ] || it_fail "origin $o collected v2, one of the newest two"
  [ ! -e "$IT_DIR/$o/f.img/v1" ] || it_fail "origin $o still holds v1 after gc --keep 2"
done
echo "PASS two_versions"
