#!/usr/bin/env bash
# A standby fdsched refuses every call naming the leader (fdadmin given the standby alone exits 3 with the leader's address; given both, it finds the leader); a leader paused (SIGSTOP) past its ZooKeeper session is replaced, and once resumed it steps down without re-parenting anyone, its orders fenced off by the new leader's higher election sequence, while every node completes the next version.
. "$(dirname "$0")/lib.sh" "$1"
it_require_cluster
it_init sched_standby 300
it_zk_start 1
IT_ZK_SESSION_MS=2000
it_cluster 3 1 2 2

leader=$(it_sched_leader) || it_fail "no fdsched leads"
standby=sched
[ "$leader" = sched ] && standby=sched2
it_log "leader $leader, standby $standby"

# ---- the standby refuses, naming the leader ----------------------------------------
sa="127.0.0.1:${IT_PORT[$standby]}"
la="127.0.0.1:${IT_PORT[$leader]}"
rc=0
out=$("$FDADMIN" --scheduler "$sa" --cluster-key "$IT_DIR/cluster.key" versions 2>&1) || rc=$?
[ $rc -eq 3 ] || it_fail "fdadmin versions on the standby exited $rc (want 3): $out"
grep -q "UNAVAILABLE not the fdsched leader; the leader is $la" <<<"$out" ||
  it_fail "the standby's refusal does not name the leader $la: $out"
it_log "standby refuses: $(grep -o 'not the fdsched leader.*' <<<"$out")"
# given the standby first, fdadmin follows to the leader
"$FDADMIN" --scheduler "$sa,$la" --cluster-key "$IT_DIR/cluster.key" --json status \
  >"$IT_DIR/status.json" 2>/dev/null || it_fail "fdadmin status with both addresses failed"
python3 - "$IT_DIR/status.json" "$la" "$sa" <<'PY' || it_fail "status JSON: $(cat "$IT_DIR/status.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["leader"] and d["zookeeper"] == "connected", d
assert d["leader_addr"] == sys.argv[2] and d["standbys"] == [sys.argv[3]], d
assert d["leader_seq"] >= 0
PY

it_make_file "$IT_DIR/src" 24
sha1=$(it_sha "$IT_DIR/src")
it_publish "$IT_DIR/src" f.img || it_fail "publish v1 exited $?"
it_wait_current f.img "$sha1" 60

# ---- the leader paused past its session: replaced, then fenced ---------------------
kill -STOP "${IT_PID[$leader]}"
it_log "leader $leader paused (SIGSTOP)"
until=$((SECONDS + 20))
until [ "$(it_sched_leader || true)" = "$standby" ]; do
  [ $SECONDS -lt $until ] || it_fail "$standby did not take over from the paused $leader"
  sleep 0.05
done
it_log "$standby leads"
cp "$IT_DIR/src" "$IT_DIR/src2"
it_mutate "$IT_DIR/src2" 30
sha2=$(it_sha "$IT_DIR/src2")
it_publish "$IT_DIR/src2" f.img || it_fail "publish v2 under the new leader exited $?"
it_wait_current f.img "$sha2" 90
# its log since it resumed (by timestamp: what it wrote before the pause
# may reach the file later)
resumed=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
since() { awk -v t="$resumed" '$1 >= t' "$IT_DIR/$leader.log"; }
kill -CONT "${IT_PID[$leader]}"
it_log "old leader $leader resumed"
until=$((SECONDS + 20))
until since | grep -q "no longer the leader"; do
  [ $SECONDS -lt $until ] || it_fail "the resumed $leader did not step down"
  sleep 0.05
done
since | grep "no longer the leader" | head -n 1 >&2
sleep 1
if since | grep -q "re-parenting\|registered while\|committed"; then
  it_fail "the resumed $leader acted as leader: $(since | grep "re-parenting\|registered while\|committed" | head -n 3)"
fi
[ "$(it_sched_leader)" = "$standby" ] || it_fail "$standby no longer leads after $leader resumed"
# every node still holds v2 (no order of the deposed leader took it back)
it_wait_current f.img "$sha2" 10
fenced=$(cat "$IT_DIR"/n*.log "$IT_DIR"/o*.log | grep -c "ignored: leader sequence" || true)
it_log "the resumed $leader stepped down; nodes refused $fenced of its messages; all on v2"
echo "PASS sched_standby"
