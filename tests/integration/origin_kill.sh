#!/usr/bin/env bash
# An origin SIGKILLed mid-publish: the publish fails cleanly or succeeds on the remaining origins, and a version is never acknowledged that a live origin does not hold.
. "$(dirname "$0")/lib.sh" "$1"
it_require_cluster
it_init origin_kill 180
IT_CHUNK=64K
it_cluster 3 1 2 2

it_make_file "$IT_DIR/src" 64
sha=$(it_sha "$IT_DIR/src")

# Publish in the background; SIGKILL the middle origin as soon as the head
# has begun storing the version.
it_publish "$IT_DIR/src" big.img --json >"$IT_DIR/publish.json" 2>"$IT_DIR/publish.err" &
pub=$!
until=$((SECONDS + 60))
while ! compgen -G "$IT_DIR/o1/big.img/v1*" >/dev/null && kill -0 $pub 2>/dev/null; do
  [ $SECONDS -lt $until ] || it_fail "the head never began v1"
  sleep 0.005
done
it_stop o2 KILL
killed_before_ack=1
kill -0 $pub 2>/dev/null || killed_before_ack=0
rc=0
wait $pub || rc=$?
it_log "publish exited $rc (o2 killed $([ $killed_before_ack = 1 ] && echo before || echo after) it returned): $(cat "$IT_DIR/publish.err" | tail -n 2 | tr '\n' ' ')"

live=(o1 o3)
case $rc in
  0)
    # Acknowledged: every origin it names, and every live origin, holds it whole.
    for o in "${live[@]}"; do
      [ -f "$IT_DIR/$o/big.img/v1" ] || it_fail "v1 acknowledged but live origin $o does not hold it"
      [ "$(it_sha "$IT_DIR/$o/big.img/v1")" = "$sha" ] || it_fail "live origin $o holds other bytes"
    done
    # Every origin the ack names held it durably (o2 too, if named: its
    # complete file survived the SIGKILL).
    named=$(grep -o '"origins":\[[^]]*\]' "$IT_DIR/publish.json" || true)
    for o in $(echo "$named" | grep -o '"o[0-9]*"' | tr -d '"'); do
      [ -f "$IT_DIR/$o/big.img/v1" ] && [ "$(it_sha "$IT_DIR/$o/big.img/v1")" = "$sha" ] \
        || it_fail "the ack names $o, which does not hold v1 durably"
    done
    it_log "the ack names $named" 
    it_wait_current big.img "$sha" 90
    it_log "acknowledged on the remaining origins; every node holds v1" ;;
  1)
    # Failed cleanly: nothing of it was registered, so no node may switch to it;
    # the cluster stays usable and publishing again succeeds on o1 + o3.
    for id in "${IT_NODES[@]}"; do
      [ -e "$IT_DIR/$id/big.img/current" ] && it_fail "$id switched to a version whose publish failed"
    done
    it_publish "$IT_DIR/src" big.img --json >"$IT_DIR/publish2.json" || it_fail "publish after the failure exited $?"
    v=$(grep -o '"version":[0-9]*' "$IT_DIR/publish2.json" | cut -d: -f2)
    for o in "${live[@]}"; do
      [ "$(it_sha "$IT_DIR/$o/big.img/v$v")" = "$sha" ] || it_fail "v$v acknowledged but $o lacks it"
    done
    it_wait_current big.img "$sha" 90
    it_log "failed cleanly; the retry was acknowledged by o1 and o3 and reached every node" ;;
  *) it_fail "publish exited $rc: neither success (0) nor a clean failure (1)" ;;
esac
echo "PASS origin_kill"
