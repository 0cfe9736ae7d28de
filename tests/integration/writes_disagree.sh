#!/usr/bin/env bash
# The origins must agree byte for byte: o3 signs with another certified
# origin key, so its manifest of a merged version differs from the head's.
# The bump fails loudly (the head logs both digests, the Bump call fails),
# the version is never registered nor distributed (every node stays on the
# version before), and further changes to that file are refused.
. "$(dirname "$0")/lib.sh" "$1"
it_require_cluster
it_init writes_disagree 180
IT_ORIGIN_INI=$'bump_changes = 0\nbump_bytes = 0\nbump_interval_s = 0'
it_cluster 3 1 1 2

head -c 5000 /dev/urandom >"$IT_DIR/c1"
it_writer append f.img "$IT_DIR/c1" >/dev/null || it_fail "append failed"
out=$(it_writer bump f.img 2>&1) || it_fail "the first bump failed: $out"
it_wait_current f.img "$(it_sha "$IT_DIR/c1")" 60
it_log "v1 agreed and distributed: $out"

# o3 restarts with another origin key, certified by the same admin.
"$FDADMIN" keygen "$IT_DIR/origin2.pem" "$IT_DIR/origin2.pub" >/dev/null
"$FDADMIN" --admin-key "$IT_DIR/admin.pem" cert --role origin --name it-origin-2 --days 30 \
  "$IT_DIR/origin2.pub" -o "$IT_DIR/origin2.cert" >/dev/null
from=$(($(wc -l <"$IT_DIR/o2.log") + 1))
it_stop o3 TERM
sed -i "s|^signing_key_file = .*|signing_key_file = $IT_DIR/origin2.pem|; s|^signing_cert_file = .*|signing_cert_file = $IT_DIR/origin2.cert|" "$IT_DIR/o3.ini"
it_start_node o3
it_wait_up o3 20
it_wait_origins 30
# until o2 takes o3 back into the changes' chain
until=$((SECONDS + 30))
until tail -n +"$from" "$IT_DIR/o2.log" | grep -q "origin o3 is up to date"; do
  [ $SECONDS -lt $until ] || it_fail "o3 never rejoined the chain after o2"
  sleep 0.1
done

head -c 5000 /dev/urandom >"$IT_DIR/c2"
until=$((SECONDS + 30))
until it_writer append f.img "$IT_DIR/c2" >/dev/null 2>&1; do
  [ $SECONDS -lt $until ] || it_fail "the append after o3's restart was never acknowledged"
  sleep 0.5
done
rc=0; out=$(it_writer bump f.img 2>&1) || rc=$?
it_log "bump with o3 on another key: exit $rc: $out"
[ $rc -ne 0 ] || it_fail "a bump was acknowledged though o3 merged other bytes"
[[ $out == *"merged the version differently"* ]] || it_fail "the bump's error does not say the origins disagree"
grep -q "f.img v2: origins disagree on the merged version" "$IT_DIR/o1.log" ||
  it_fail "the head did not log the disagreement"
it_log "head: $(grep -o 'f.img v2: origins disagree.*' "$IT_DIR/o1.log" | head -n 1)"
sleep 2
for id in "${IT_NODES[@]}"; do
  [ "$(it_node_sha "$id" f.img)" = "$(it_sha "$IT_DIR/c1")" ] || it_fail "$id moved off v1"
  compgen -G "$IT_DIR/$id/f.img/v2*" >/dev/null && it_fail "$id has something of v2"
done
grep -q "f.img v2" "$IT_DIR/sched.log" && it_fail "fdsched heard of v2"
rc=0; out=$(it_writer append f.img "$IT_DIR/c1" 2>&1) || rc=$?
[ $rc -ne 0 ] && [[ $out == *"stopped"* ]] || it_fail "a change after the disagreement was not refused: $out"
it_log "changes after it are refused: $(echo "$out" | grep -o 'changes to this file are stopped.*' | head -n 1)"
echo "PASS writes_disagree"
