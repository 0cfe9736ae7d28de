#!/usr/bin/env bash
# Who may write, and when: a plain cluster member's Origin.Write is refused
# with PERMISSION_DENIED; a writer key whose certificate another admin signed
# is refused at the head's handshake; with the two other origins down, a
# change is refused with a clear message naming min_durable_origins (and so
# is a publish), nothing of it reaches any log; once one origin is back the
# same writer is acknowledged, and the merged version holds only what was.
. "$(dirname "$0")/lib.sh" "$1"
MEMBER=$IT_BUILD/tests/integration/it_member_write
it_require_cluster
it_require "$MEMBER"
it_init writes_refused 180
IT_ORIGIN_INI=$'bump_changes = 0\nbump_bytes = 0\nbump_interval_s = 0'
it_cluster 3 1 1 2
head_addr=$(it_origin_addrs | cut -d, -f1)

# 1. A member (the cluster key only) is not a writer.
rc=0; out=$("$MEMBER" "$head_addr" "$IT_DIR/cluster.key" f.img 2>&1) || rc=$?
it_log "member: exit $rc: $out"
[ $rc -eq 1 ] && [[ $out == *PERMISSION_DENIED* ]] || it_fail "a member's Write was not refused with PERMISSION_DENIED"

# 2. A writer key certified by another admin: refused at the handshake (exit 3).
"$FDADMIN" keygen "$IT_DIR/other-admin.pem" "$IT_DIR/other-admin.pub" >/dev/null
"$FDADMIN" keygen "$IT_DIR/rogue.pem" "$IT_DIR/rogue.pub" >/dev/null
"$FDADMIN" --admin-key "$IT_DIR/other-admin.pem" cert --role writer --name rogue --days 1 \
  "$IT_DIR/rogue.pub" -o "$IT_DIR/rogue.cert" >/dev/null || it_fail "cannot make the rogue certificate"
head -c 100 /dev/urandom >"$IT_DIR/change"
rc=0; out=$("$FDADMIN" --origins "$(it_origin_addrs)" --cluster-key "$IT_DIR/cluster.key" \
  --writer-key "$IT_DIR/rogue.pem" --writer-cert "$IT_DIR/rogue.cert" append f.img "$IT_DIR/change" 2>&1) || rc=$?
it_log "rogue writer: exit $rc: $(echo "$out" | tail -n 1)"
[ $rc -eq 3 ] || it_fail "a writer certified by another admin was let in (exit $rc, want 3)"

# 3. The certified writer is acknowledged while the group is whole.
it_writer append f.img "$IT_DIR/change" >/dev/null || it_fail "the certified writer was refused"
cp "$IT_DIR/change" "$IT_DIR/model"

# 4. o2 and o3 down: below min_durable_origins (2), refused, not applied.
from=$(($(wc -l <"$IT_DIR/o1.log") + 1))
it_stop o2 KILL
it_stop o3 KILL
# Until the head has found both gone, a change would wait for them (ordered,
# never acknowledged on one disk) instead of being refused.
until=$((SECONDS + 20))
until tail -n +"$from" "$IT_DIR/o1.log" | grep -q "origin o3 left out"; do
  [ $SECONDS -lt $until ] || it_fail "o1 did not notice o3 is gone"
  sleep 0.1
done
head -c 100 /dev/urandom >"$IT_DIR/change2"
rc=0; out=$(it_writer append f.img "$IT_DIR/change2" 2>&1) || rc=$?
[ $rc -ne 0 ] || it_fail "a change was acknowledged with o2 and o3 down: $out"
it_log "below min_durable_origins: exit $rc: $(echo "$out" | tail -n 1)"
[[ $out == *min_durable_origins* ]] || it_fail "the refusal does not name min_durable_origins: $out"
it_log "the refusal: $(echo "$out" | grep min_durable_origins | head -n 1)"
[ $rc -eq 1 ] || it_fail "fdadmin append exited $rc on a refusal (want 1)"
it_make_file "$IT_DIR/whole" 1
rc=0; out=$(it_publish "$IT_DIR/whole" g.img 2>&1) || rc=$?
it_log "publish below min_durable_origins: exit $rc: $(echo "$out" | tail -n 1)"
[ $rc -ne 0 ] || it_fail "a publish was acknowledged by the head alone"

# 5. o2 back: the writer is acknowledged again, and the merged version holds
# the first change and this one, not the refused one.
it_start_node o2
it_wait_up o2 20
head -c 100 /dev/urandom >"$IT_DIR/change3"
until=$((SECONDS + 30))
until out=$(it_writer append f.img "$IT_DIR/change3" 2>&1); do
  [ $SECONDS -lt $until ] || it_fail "the writer is still refused with o2 back: $out"
  sleep 0.5
done
cat "$IT_DIR/change3" >>"$IT_DIR/model"
out=$(it_writer bump f.img 2>&1) || it_fail "bump failed: $out"
it_log "$out"
it_wait_current f.img "$(it_sha "$IT_DIR/model")" 60
it_log "v1 on every node = the two acknowledged changes, without the refused one"
echo "PASS writes_refused"
