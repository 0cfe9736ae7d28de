#!/usr/bin/env bash
# The origin list in any order (issue 22): fdadmin and the writers are given
# the origins as o3,o2,o1 — the static chain's head, o1, last — and find the
# head by asking (Origin.Head): a publish, an append, a write and a bump
# succeed through it. Then the head is SIGKILLed while 4 writers have
# changes in flight, and restarted (the static chain's head): libfdclient
# sends every change whose outcome was lost again, with its (client_id,
# client_seq), until acknowledged — every change ends acknowledged exactly
# once, and the version a bump then makes equals the model of the
# acknowledged changes (none twice, none lost) on every origin and node.
. "$(dirname "$0")/lib.sh" "$1"
WRITER=$IT_BUILD/tests/integration/it_writer
it_require_cluster
it_require "$WRITER"
it_init writes_head_order 300
IT_ORIGIN_INI=$'bump_changes = 0\nbump_bytes = 0\nbump_interval_s = 0'
it_cluster 3 1 1 2

REV=$(it_origin_addrs | tr ',' '\n' | tac | paste -sd, -)
it_log "origins given as $REV (o3,o2,o1)"
adm() { # fdadmin with the admin key and the reversed origin list
  "$FDADMIN" --scheduler "$(it_sched_addr)" --origins "$REV" \
    --cluster-key "$IT_DIR/cluster.key" --admin-key "$IT_DIR/admin.pem" "$@"
}
wr() { # fdadmin with the writer key and the reversed origin list
  "$FDADMIN" --scheduler "$(it_sched_addr)" --origins "$REV" \
    --cluster-key "$IT_DIR/cluster.key" --writer-key "$IT_DIR/writer.pem" \
    --writer-cert "$IT_DIR/writer.cert" "$@"
}

# ---- fdadmin: publish, append, write, bump, status ----
it_make_file "$IT_DIR/p.img" 2
adm publish "$IT_DIR/p.img" --name p.img --chunk-size "$IT_CHUNK" --no-progress >&2 ||
  it_fail "publish through the reversed list failed"
it_wait_current p.img "$(it_sha "$IT_DIR/p.img")" 120
it_log "publish: p.img on every node"
head -c 300000 /dev/urandom >"$IT_DIR/g.part1"
head -c 1000 /dev/urandom >"$IT_DIR/g.part2"
wr append g.img "$IT_DIR/g.part1" >&2 || it_fail "append through the reversed list failed"
wr write g.img --offset 1000 "$IT_DIR/g.part2" >&2 || it_fail "write through the reversed list failed"
out=$(wr bump g.img 2>&1) || it_fail "bump through the reversed list failed: $out"
it_log "bump: $out"
v=$(echo "$out" | sed -n 's/.*version \([0-9]*\) committed.*/\1/p')
[ -n "$v" ] || it_fail "no version in the bump's answer"
cp "$IT_DIR/g.part1" "$IT_DIR/g.model"
dd if="$IT_DIR/g.part2" of="$IT_DIR/g.model" bs=1000 seek=1 conv=notrunc status=none
[ "$(it_sha "$IT_DIR/o1/g.img/v$v")" = "$(it_sha "$IT_DIR/g.model")" ] ||
  it_fail "g.img v$v is not the append then the write"
status=$(adm status --json) || it_fail "status failed"
echo "$status" | python3 -c '
import json, sys
s = json.load(sys.stdin)
o = s["origins"]
assert [x["reachable"] for x in o] == [True] * 3, o
leads = [x["id"] for x in o if x["leads"]]
assert leads == ["o1"], o
assert all(x["chain"] == ["o1", "o2", "o3"] and x["head"].startswith("o1@") for x in o), o
' || it_fail "status --json does not show o1 leading the chain o1,o2,o3: $status"
adm status | grep -A4 '^origins' >&2

# ---- the head killed under 4 writers, restarted ----
WRITERS=4 COUNT=${IT_WRITES_COUNT:-15000}
for w in $(seq 1 $WRITERS); do
  "$WRITER" write "$REV" "$IT_DIR/cluster.key" "$IT_DIR/writer.pem,$IT_DIR/writer.cert" \
    f.img "$w" "$COUNT" 300 >"$IT_DIR/w$w.out" 2>"$IT_DIR/w$w.err" &
  wpid[w]=$!
done
at=${IT_KILL_AT:-$((10 + RANDOM % 50))}
want=$((WRITERS * COUNT * at / 100))
it_log "will SIGKILL the head o1 once ${at}% of the changes are acknowledged"
until [ "$(cat "$IT_DIR"/w*.out | grep -c '^ack')" -ge "$want" ]; do sleep 0.02; done
it_stop o1 KILL
it_log "o1 killed with $(cat "$IT_DIR"/w*.out | grep -c '^ack') acknowledged"
sleep 2
it_start_node o1
it_wait_up o1 20
it_log "o1 restarted"
rc=0
for w in $(seq 1 $WRITERS); do
  wait "${wpid[w]}" || { rc=$?; it_log "writer $w exited $rc: $(tail -n 3 "$IT_DIR/w$w.err")"; }
done
cat "$IT_DIR"/w*.out >"$IT_DIR/acks"
acked=$(grep -c '^ack' "$IT_DIR/acks")
others=$(grep -vc '^ack' "$IT_DIR/acks" || true)
[ $rc -eq 0 ] && [ "$acked" -eq $((WRITERS * COUNT)) ] && [ "$others" -eq 0 ] ||
  it_fail "$acked of $((WRITERS * COUNT)) changes acknowledged, $others failed: $(grep -v '^ack' "$IT_DIR/acks" | head -n 3)"
dups=$(awk '$1 == "ack" { print $6, $7 }' "$IT_DIR/acks" | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ] || it_fail "$dups changes acknowledged twice"
it_log "every change acknowledged once: $acked (sent again by the library: $(grep -h 'sent again' "$IT_DIR"/w*.err | head -n 1))"

out=$(wr bump f.img 2>&1) || it_fail "the bump after the restart failed: $out"
it_log "bump: $out"
v=$(echo "$out" | sed -n 's/.*version \([0-9]*\) committed.*/\1/p')
[ -n "$v" ] || it_fail "no version in the bump's answer"
"$WRITER" model - "$IT_DIR/f.model" <"$IT_DIR/acks" >&2 || it_fail "cannot build the model (an index acknowledged twice?)"
sha=$(it_sha "$IT_DIR/f.model")
it_origins_hold f.img "$v" "$sha" "the model of the acknowledged changes"
it_wait_current f.img "$sha" 120
it_log "f.img v$v = the model of $acked changes, each once, on o1 o2 o3 and all ${#IT_NODES[@]} nodes"
echo "PASS writes_head_order"
