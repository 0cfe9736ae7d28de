#!/usr/bin/env bash
# it_writes_quorum (issue 22): the origins' head and fdsched on a 3-server
# ZooKeeper ensemble that loses servers. One of 3 killed: nothing stops
# (writes acknowledged). Two of 3 killed right after a version was
# committed: writes are refused with a clear error (there is never a second
# head), and the fan-out already planned completes on every node. A server
# back: writes are acknowledged again.
. "$(dirname "$0")/lib.sh" "$1"
it_require_cluster
it_init writes_quorum 300
it_zk_origins
# the nodes fetch slowly enough that the fan-out outlives the quorum
IT_LEAF_INI="download_bps_max = 160000000"
it_cluster 3 1 2 2
head=$(it_wait_head 30)
it_log "the head is $head; ZooKeeper leader $WZ_LEADER"
printf 'abc' >"$IT_DIR/small.bin"
append() { it_writer append f.img "$IT_DIR/small.bin" >"$IT_DIR/append.out" 2>&1; }
append || it_fail "a write failed with every server up: $(tail -n 1 "$IT_DIR/append.out")"

# one server of three: a follower of the ensemble
for i in 1 2 3; do [ "127.0.0.1:${WZ_CPORT[$i]}" = "$WZ_LEADER" ] || { f1=$i; break; }; done
wz_kill "$f1"
append || it_fail "a write failed with one ZooKeeper server of 3 down: $(tail -n 1 "$IT_DIR/append.out")"
it_log "ZooKeeper server $f1 of 3 down: writes acknowledged"

# a version committed, and two servers of three gone while it fans out
it_make_file "$IT_DIR/v.img" 64
sha=$(it_sha "$IT_DIR/v.img")
it_publish "$IT_DIR/v.img" v.img >/dev/null
for i in 1 2 3; do [ "$i" = "$f1" ] || { f2=$i; break; }; done
wz_kill "$f2"
for i in 1 2 3; do [ "$i" = "$f1" ] || [ "$i" = "$f2" ] || left=$i; done
t0=$SECONDS
# the server left stops serving once it sees it has no quorum (at most
# syncLimit x tickTime after the kill)
until [ -z "$(wz_mode "${WZ_CPORT[$left]}")" ]; do
  [ $((SECONDS - t0)) -lt 30 ] || it_fail "ZooKeeper server $left still serves alone"
  sleep 0.1
done
it_log "ZooKeeper servers $f1 and $f2 of 3 down: server $left has no quorum and serves nobody"
from=$(($(wc -l <"$IT_DIR/$head.log") + 1))
until ! tail -n 1 <(grep -E "leads the chain|stops leading" "$IT_DIR/$head.log") | grep -q "leads the chain"; do
  [ $((SECONDS - t0)) -lt 30 ] || it_fail "$head still leads without ZooKeeper's quorum"
  sleep 0.1
done
if append; then it_fail "a write was acknowledged without ZooKeeper's quorum"; fi
grep -q "ZooKeeper" "$IT_DIR/append.out" ||
  it_fail "the refusal does not say why: $(tail -n 2 "$IT_DIR/append.out")"
it_log "refused without quorum: $(grep -o "failed: .*" "$IT_DIR/append.out" | head -n 1 | cut -c1-400)"
grep -q "stops leading: ZooKeeper unreachable" "$IT_DIR/$head.log" ||
  it_fail "$head's log does not say it stopped leading"
leaders=0
for o in "${IT_ORIGINS[@]}"; do
  tail -n 1 <(grep -E "leads the chain|stops leading" "$IT_DIR/$o.log") | grep -q "leads the chain" &&
    leaders=$((leaders + 1))
done
[ "$leaders" -eq 0 ] || it_fail "$leaders origin(s) say they lead without quorum"
it_wait_current v.img "$sha" 120
it_log "the version planned before the quorum was lost completed on every node (no ZooKeeper)"

wz_restart "$f2"
t0=$SECONDS
until append; do
  [ $((SECONDS - t0)) -lt 60 ] || it_fail "writes did not resume after quorum returned: $(tail -n 1 "$IT_DIR/append.out")"
  sleep 0.2
done
it_log "quorum back (server $f2 restarted): a write acknowledged after $((SECONDS - t0)) s, head $(it_wait_head 10)"
echo "PASS writes_quorum"
