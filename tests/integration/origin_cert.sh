#!/usr/bin/env bash
# A version signed by the origin group's certified key is accepted by fdsched and every node and fans out; after fdadmin revoke of that key (and of a writer key) and the list copied where every daemon reads it, a new version it signs is refused by fdsched and, handed out by a scheduler that cannot check, by every node (rejections reported, none stores it), an origin holding the revoked key does not start, and the revoked writer is refused at the origin head's handshake.
. "$(dirname "$0")/lib.sh" "$1"
it_require_cluster
it_require "$FDSTORE" "$IT_BUILD/tests/integration/it_register_version"
it_init origin_cert 240
it_cluster 3 2 1 2

register() { # MANIFEST: RegisterVersion with fdsched as a cluster member can; its exit code
  local rc=0
  "$IT_BUILD/tests/integration/it_register_version" "$(it_sched_addr)" "$IT_DIR/cluster.key" \
    "$1" o1 >"$IT_DIR/register.out" 2>&1 || rc=$?
  it_log "RegisterVersion of $(basename "$1"): exit $rc ($(tail -n 1 "$IT_DIR/register.out"))"
  return $rc
}

# plant MANIFEST SRC: o1 stores the version MANIFEST describes (stopped for
# it: fdstore checks the signature against the admin key, and nothing else).
plant() {
  it_stop o1 TERM
  "$FDSTORE" ingest "$IT_DIR/o1" "$1" "$2" --pub "$IT_DIR/admin.pub" >/dev/null 2>&1 ||
    it_fail "could not plant $(basename "$1") into o1"
  it_start_node o1
  it_wait_up o1 20
  it_wait_origins 30
}

# v1, published by the admin as always.
it_make_file "$IT_DIR/src" 8
it_publish "$IT_DIR/src" f.img || it_fail "publish exited $?"
it_wait_current f.img "$(it_sha "$IT_DIR/src")" 60

# The harness's writer passes the origin head's handshake (fdadmin append,
# through libfdclient). The head serves no Write yet (it closes the
# connection on the unknown method), so the head's log is what tells.
head -c 100 /dev/urandom >"$IT_DIR/change"
it_writer append f.img "$IT_DIR/change" >/dev/null 2>&1 || true
grep -q "is writer 'it-writer' (key [0-9a-f]*)" "$IT_DIR/o1.log" ||
  it_fail "the origin head did not take the certified writer as writer"

# 1. v2 signed by the origin group's key, carrying its certificate (what the
# origins' merge will make), held by o1 and registered: fdsched accepts it,
# every node verifies it through the certificate and it fans out.
it_mutate "$IT_DIR/src" 25
sha2=$(it_sha "$IT_DIR/src")
"$FDSTORE" manifest "$IT_DIR/src" --name f.img --version 2 --base 1 --key "$IT_DIR/origin.pem" \
  --cert "$IT_DIR/origin.cert" --chunk-size "$IT_CHUNK" -o "$IT_DIR/v2.manifest" >/dev/null
plant "$IT_DIR/v2.manifest" "$IT_DIR/src"
register "$IT_DIR/v2.manifest" || it_fail "fdsched refused a version signed with the certified origin key"
it_wait_current f.img "$sha2" 60
it_log "v2 signed by the origin key (certificate it-origin) is current on all ${#IT_NODES[@]} nodes"

# 2. The admin revokes the origin key and the writer key; the list is copied
# to where every fdnode and fdsched reads it, and each takes it.
it_revoke "$IT_DIR/origin.cert" "$IT_DIR/writer.cert"
it_wait_revocations 1 10
grep -q "signing key .* is refused now (key revoked)" "$IT_DIR/o1.log" ||
  it_fail "o1 did not notice its signing key was revoked"

# The revoked writer is refused at the origin head's handshake (exit 3).
rc=0; it_writer append f.img "$IT_DIR/change" >/dev/null 2>&1 || rc=$?
[ $rc -eq 3 ] || it_fail "the origin head let the revoked writer in (exit $rc, want 3)"
grep -q "certificate writer 'it-writer': key [0-9a-f]* is revoked" "$IT_DIR/o1.log" ||
  it_fail "o1 did not say why it refused the writer"

# An origin whose signing key is revoked does not start with it.
it_stop o1 TERM
it_start_node o1
until=$((SECONDS + 15))
while kill -0 "${IT_PID[o1]}" 2>/dev/null; do
  [ $SECONDS -lt $until ] || it_fail "o1 started with a revoked signing key"
  sleep 0.1
done
wait "${IT_PID[o1]}" 2>/dev/null || true
unset "IT_PID[o1]"
tail -n +"${IT_LOG_FROM[o1]}" "$IT_DIR/o1.log" | grep -q "signing_cert_file .*: refused (key revoked)" ||
  it_fail "o1 exited without saying its signing key is revoked"
sed -i '/^signing_/d' "$IT_DIR/o1.ini" # the operator takes the revoked key away

# 3. v3 signed with the revoked key: fdsched refuses to register it.
it_mutate "$IT_DIR/src" 25
"$FDSTORE" manifest "$IT_DIR/src" --name f.img --version 3 --base 2 --key "$IT_DIR/origin.pem" \
  --cert "$IT_DIR/origin.cert" --chunk-size "$IT_CHUNK" -o "$IT_DIR/v3.manifest" >/dev/null
plant "$IT_DIR/v3.manifest" "$IT_DIR/src"
rc=0; register "$IT_DIR/v3.manifest" || rc=$?
[ $rc -ne 0 ] || it_fail "fdsched registered a version signed with a revoked key"
grep -q "f.img v3: manifest refused (key revoked)" "$IT_DIR/sched.log" ||
  it_fail "fdsched did not say the key is revoked"

# 4. A scheduler that cannot check hands v3 out anyway: every node is
# ordered to it, those offered the manifest refuse it (the key is revoked)
# and report it, and none stores any of it; currents stay on v2.
it_stop sched TERM
IT_SCHED_TRUSTS_NOBODY=1
it_start_sched
sleep 2
register "$IT_DIR/v3.manifest" || it_fail "the key-less scheduler did not take the registration"
until=$((SECONDS + 30))
for id in "${IT_NODES[@]}"; do
  while ! grep -q "order: f.img v3" "$IT_DIR/$id.log"; do
    [ $SECONDS -lt $until ] || it_fail "$id was never ordered to v3"
    sleep 0.2
  done
done
sleep 3
rejected=$(grep -l "f.img v3: manifest rejected (key revoked)" "$IT_DIR"/n*.log 2>/dev/null | wc -l)
[ "$rejected" -ge 1 ] || it_fail "no node refused v3 for its revoked key"
until=$((SECONDS + 10))
while ! grep -q "rejected the manifest of f.img v3: key revoked" "$IT_DIR/sched.log"; do
  [ $SECONDS -lt $until ] || it_fail "fdsched never heard of a node's refusal"
  sleep 0.2
done
it_admin status f.img --json | grep -q '"version":3,[^}]*"manifests_rejected":[1-9]' ||
  it_fail "fdadmin status does not count the refusal: $(it_admin status f.img --json)"
for id in "${IT_NODES[@]}"; do
  compgen -G "$IT_DIR/$id/f.img/v3*" >/dev/null && it_fail "$id stored something of v3"
  [ "$(it_node_sha "$id" f.img)" = "$sha2" ] || it_fail "$id's current moved off v2"
done
it_log "v3 signed with the revoked origin key: refused by fdsched, and by the $rejected node(s) offered it; none of ${#IT_NODES[@]} stored it"
echo "PASS origin_cert"
