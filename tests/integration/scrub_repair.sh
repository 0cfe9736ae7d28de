#!/usr/bin/env bash
# Scrub finds chunks corrupted on a node's and an origin's disk: each reports them to fdsched (fdadmin status shows them), re-fetches them from a peer into its complete version, and its current has the source's SHA-256 again.
. "$(dirname "$0")/lib.sh" "$1"
it_require_cluster
it_init scrub_repair 60
IT_SCRUB_S=1 it_cluster 3 1 2 2

# 8 MiB and 1000 bytes: 33 chunks of 256 KiB, the last one short.
it_make_file "$IT_DIR/src" 8
head -c 1000 /dev/urandom >>"$IT_DIR/src"
sha=$(it_sha "$IT_DIR/src")
it_publish "$IT_DIR/src" big.img || it_fail "publish exited $?"
it_wait_current big.img "$sha" 30

# corrupt PATH OFFSET: 16 random bytes written at OFFSET, checked to differ
# from the bytes there before they are written — not by hashing the file
# after: scrub runs every second and may already have repaired the chunk by
# then (it did, under ctest -j2: o1 repaired chunk 10 28 ms after finding
# it, before the hash of the file was done).
corrupt() {
  head -c 16 /dev/urandom >"$IT_DIR/rot"
  if dd if="$1" bs=1 skip="$2" count=16 status=none | cmp -s - "$IT_DIR/rot"; then
    it_fail "16 random bytes equal those at $2 of $1"
  fi
  dd if="$IT_DIR/rot" of="$1" bs=1 seek="$2" conv=notrunc,fsync status=none
}

# Rot on n2's disk: 16 bytes of chunk 5 and of the short last chunk 32.
victim=n2
f="$IT_DIR/$victim/big.img/v1"
[ -f "$f" ] || it_fail "$victim has no v1 file"
cs=$(numfmt --from=iec "$IT_CHUNK")
for off in $((5 * cs + 1000)) $((32 * cs + 500)); do corrupt "$f" "$off"; done
# and chunk 10 of origin o1's copy (an origin repairs from the other origins)
fo="$IT_DIR/o1/big.img/v1"
corrupt "$fo" $((10 * cs + 7))
it_log "corrupted chunks 5 and 32 of $victim's v1, chunk 10 of o1's"

status_field() { # NAME: the value of a number field in fdadmin status --json
  it_admin status big.img --json 2>/dev/null | grep -o "\"$1\":[0-9]*" | head -n1 | cut -d: -f2
}
wait_for() { # SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds
  local until=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    [ $SECONDS -lt $until ] || it_fail "timed out waiting for: $what"
    sleep 0.2
  done
}
logged() { grep -q "$2" "$IT_DIR/$1.log"; }
field_is() { [ "$(status_field "$1")" = "$2" ]; }
sha_is_source() { [ "$(it_sha "$1")" = "$sha" ]; }
all_repaired() { field_is bad_chunks_reported 3 && field_is bad_chunks_repaired 3; }

wait_for 15 "$victim's scrub to find chunk 5" logged "$victim" "scrub: big.img v1 chunk 5 is bad"
wait_for 5 "$victim's scrub to find chunk 32" logged "$victim" "scrub: big.img v1 chunk 32 is bad"
wait_for 15 "fdsched to log the report" logged sched "node $victim reports chunk 5 of big.img v1 bad"
wait_for 15 "$victim's current to have the source's bytes again" \
  sha_is_source "$IT_DIR/$victim/big.img/current"
logged "$victim" "chunk 5 re-fetched and rewritten" || it_fail "$victim did not log the re-fetch of chunk 5"
logged "$victim" "chunk 32 re-fetched and rewritten" || it_fail "$victim did not log the re-fetch of chunk 32"
[ "$(stat -c %s "$f")" = "$(stat -c %s "$IT_DIR/src")" ] || it_fail "$victim's v1 changed size"
wait_for 15 "o1's v1 to have the source's bytes again" sha_is_source "$fo"
logged o1 "chunk 10 re-fetched and rewritten" || it_fail "o1 did not log the re-fetch of chunk 10"
wait_for 10 "fdadmin status to show 3 of 3 bad chunks repaired" all_repaired
it_admin status big.img | grep -q "bad chunks 3 repaired / 3 reported" ||
  it_fail "fdadmin status does not show the figure: $(it_admin status big.img)"

# The repaired chunks are good on a later pass; no other node found anything.
after=$(grep -n "chunk \(5\|32\) re-fetched and rewritten" "$IT_DIR/$victim.log" | cut -d: -f1 | sort -n | tail -n1)
clean_pass() {
  tail -n +"$((after + 1))" "$IT_DIR/$victim.log" | grep -q "scrub of big.img v1: 0 bad chunk(s)"
}
wait_for 10 "a clean scrub pass on $victim after the repair" clean_pass
for id in "${IT_NODES[@]}" "${IT_ORIGINS[@]}"; do
  [ "$id" = "$victim" ] || [ "$id" = o1 ] && continue
  ! logged "$id" "scrub: big.img" || it_fail "$id reports a bad chunk it should not have"
done
it_wait_current big.img "$sha" 5
echo "PASS scrub_repair"
