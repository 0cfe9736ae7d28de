#!/usr/bin/env bash
# A client without the cluster key is refused (fdadmin and fdnode), a publish signed by another key is refused, and a forged manifest is refused by fdsched and, with a scheduler that cannot check, rejected by every node that is offered it (none stores it).
. "$(dirname "$0")/lib.sh" "$1"
it_require_cluster
it_require "$FDSTORE" "$IT_BUILD/tests/integration/it_register_version"
it_init auth_and_signature 150
it_cluster 3 2 2 2

it_make_file "$IT_DIR/src" 8
sha=$(it_sha "$IT_DIR/src")
it_publish "$IT_DIR/src" f.img || it_fail "publish exited $?"
it_wait_current f.img "$sha" 60

# 1. No cluster key: refused at the handshake, exit 3 (scheduler and origin).
"$FDADMIN" keygen --cluster "$IT_DIR/wrong.key" >/dev/null
rc=0; "$FDADMIN" --scheduler "$(it_sched_addr)" --cluster-key "$IT_DIR/wrong.key" nodes >/dev/null 2>&1 || rc=$?
[ $rc -eq 3 ] || it_fail "scheduler answered a client with the wrong cluster key (exit $rc, want 3)"
rc=0; "$FDADMIN" --scheduler "$(it_sched_addr)" --origins "$(it_origin_addrs)" --cluster-key "$IT_DIR/wrong.key" \
  --admin-key "$IT_DIR/admin.pem" gc f.img >/dev/null 2>&1 || rc=$?
[ $rc -eq 3 ] || it_fail "origin answered a client with the wrong cluster key (exit $rc, want 3)"

# A node with the wrong cluster key never becomes a member.
IT_CLUSTER_KEY_OVERRIDE=$IT_DIR/wrong.key
it_start_node intruder node r1 z1
unset IT_CLUSTER_KEY_OVERRIDE
sleep 2
it_admin nodes --json | grep -q '"node_id":"intruder"' && it_fail "a node without the cluster key was registered"

# 2. The admin role needs the admin key: a publish signed by another key is
# refused at the handshake or by the head, and no node gets anything new.
"$FDADMIN" keygen "$IT_DIR/rogue.pem" "$IT_DIR/rogue.pub" >/dev/null
it_mutate "$IT_DIR/src" 50
rc=0
"$FDADMIN" --scheduler "$(it_sched_addr)" --origins "$(it_origin_addrs)" --cluster-key "$IT_DIR/cluster.key" \
  --admin-key "$IT_DIR/rogue.pem" publish "$IT_DIR/src" --name f.img --chunk-size "$IT_CHUNK" --no-progress \
  >/dev/null 2>&1 || rc=$?
[ $rc -eq 1 ] || [ $rc -eq 3 ] || it_fail "a publish signed by a rogue key exited $rc (want 1 or 3)"

# 3. A forged version: a rogue-signed v2 is planted in origin o1's store
# (fdstore trusts the key it is told) and registered with fdsched by a
# cluster member. fdsched checks signatures itself and must refuse it.
"$FDSTORE" manifest "$IT_DIR/src" --name f.img --version 2 --base 1 --key "$IT_DIR/rogue.pem" \
  --chunk-size "$IT_CHUNK" -o "$IT_DIR/forged.manifest" >/dev/null
it_stop o1 TERM
"$FDSTORE" ingest "$IT_DIR/o1" "$IT_DIR/forged.manifest" "$IT_DIR/src" --pub "$IT_DIR/rogue.pub" >/dev/null 2>&1 \
  || it_fail "could not plant the forged version"
it_start_node o1
it_wait_up o1 20
it_wait_origins 30
register() {
  local rc=0
  "$IT_BUILD/tests/integration/it_register_version" "$(it_sched_addr)" "$IT_DIR/cluster.key" \
    "$IT_DIR/forged.manifest" o1 >"$IT_DIR/register.out" 2>&1 || rc=$?
  it_log "RegisterVersion of the forged manifest: exit $rc ($(tail -n 1 "$IT_DIR/register.out"))"
  return $rc
}
rc=0; register || rc=$?
[ $rc -ne 0 ] || it_fail "fdsched registered a manifest with a bad signature"

# 4. Even a scheduler that cannot check (no admin key configured) only gets
# the forged version as far as the nodes: every node is ordered to it; those
# offered the manifest check it against the admin key they trust and reject
# it (so they never pass it on to their children); no node stores any of it.
it_stop sched TERM
IT_SCHED_TRUSTS_NOBODY=1
it_start_sched
sleep 2
register || it_fail "the key-less scheduler did not take the registration"
until=$((SECONDS + 30))
for id in "${IT_NODES[@]}"; do
  while ! grep -q "order: f.img v2" "$IT_DIR/$id.log"; do
    [ $SECONDS -lt $until ] || it_fail "$id was never ordered to the forged v2"
    sleep 0.2
  done
done
sleep 3
rejected=$(grep -l "f.img v2: manifest rejected (bad signature)" "$IT_DIR"/n*.log 2>/dev/null | wc -l)
[ "$rejected" -ge 1 ] || it_fail "no node logged a signature rejection: the forged manifest reached none"
# The nodes tell fdsched on their heartbeats; it counts the refusals per version.
until=$((SECONDS + 10))
while ! grep -q "rejected the manifest of f.img v2: bad signature" "$IT_DIR/sched.log"; do
  [ $SECONDS -lt $until ] || it_fail "fdsched never heard of a node's signature rejection"
  sleep 0.2
done
it_admin status f.img --json | grep -q '"version":2,[^}]*"manifests_rejected":[1-9]' ||
  it_fail "fdadmin status does not count the rejection: $(it_admin status f.img --json)"
for id in "${IT_NODES[@]}"; do
  [ -e "$IT_DIR/$id/f.img/v2" ] && it_fail "$id holds the forged v2"
  compgen -G "$IT_DIR/$id/f.img/v2*" >/dev/null && it_fail "$id stored something of the forged v2"
  [ "$(it_node_sha "$id" f.img)" = "$sha" ] || it_fail "$id's current moved off v1"
done
it_log "all ${#IT_NODES[@]} nodes were ordered to the forged v2, none stored it ($rejected rejected its signature, the rest never got it from a parent), currents stay on v1"
echo "PASS auth_and_signature"
