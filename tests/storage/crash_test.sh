#!/usr/bin/env bash
# crash_test.sh — fdstore ingest SIGKILLed at random points (>= 50 kills); every reopen+resume ends with sha256sum(current) == source and no torn version is ever visible.
set -euo pipefail
build=$1
fdstore=$build/storage/fdstore
kills_wanted=${FD_CRASH_KILLS:-55}
work=$(mktemp -d /var/tmp/fd-st-crash-XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

"$fdstore" keygen k.pem k.pub >/dev/null
# Version k is A with a quarter of its 64 KiB chunks rewritten (a different
# quarter each time), so every ingest has delta copies, source reads and a
# completion to be killed in.
head -c $((8 * 1024 * 1024 + 3000)) /dev/urandom >A
declare -A sums
make_version() {
  local k=$1
  cp A "S$k"
  for c in $(seq $((k % 4)) 4 128); do
    head -c 512 /dev/urandom | dd of="S$k" bs=512 seek=$((c * 128 + 1)) conv=notrunc status=none
  done
  sums[$k]=$(sha256sum <"S$k" | cut -d' ' -f1)
  rm -f "S$((k - 3))"
}
sum_of() { echo "${sums[$1]}"; }

make_version 1
"$fdstore" manifest S1 --name FileA --version 1 --chunk-size 64K --key k.pem -o m1 >/dev/null
"$fdstore" ingest data m1 S1 --pub k.pub >/dev/null 2>&1

# Whatever a kill left behind, `current` and every v<N> are whole versions.
check_not_torn() {
  local k=$1 cur
  cur=$(readlink data/FileA/current)
  case "$cur" in
    v$((k - 1)) | v$k) ;;
    *) echo "FAIL: current -> $cur after a kill in version $k"; exit 1 ;;
  esac
  local got
  got=$(sha256sum <data/FileA/current | cut -d' ' -f1)
  [ "$got" = "$(sum_of "${cur#v}")" ] || { echo "FAIL: current ($cur) is torn"; exit 1; }
  if [ -e data/FileA/v$k ]; then
    got=$(sha256sum <data/FileA/v$k | cut -d' ' -f1)
    [ "$got" = "$(sum_of "$k")" ] || { echo "FAIL: v$k exists but is torn"; exit 1; }
  fi
}

kills=0 k=1
while [ "$kills" -lt "$kills_wanted" ]; do
  k=$((k + 1))
  [ "$k" -lt 200 ] || { echo "FAIL: only $kills kills landed in $k versions"; exit 1; }
  make_version "$k"
  src=S$k
  "$fdstore" manifest "$src" --name FileA --version "$k" --base $((k - 1)) --chunk-size 64K \
    --key k.pem -o "m$k" >/dev/null
  # One to three kills per version, each at a random moment of a run that
  # takes ~250 ms (delta copies, then 2 MiB of source read at 8 MiB/s, then
  # the completion). A kill counts only if it found the process running.
  for _ in $(seq 1 $((1 + RANDOM % 3))); do
    "$fdstore" ingest data "m$k" "$src" --pub k.pub --rate 8M --queue-depth 8 >/dev/null 2>&1 &
    pid=$!
    sleep "0.$(printf '%03d' $((RANDOM % 280)))"
    kill -9 "$pid" 2>/dev/null || true
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    if [ "$rc" -eq 137 ]; then kills=$((kills + 1)); fi
    pid=
    check_not_torn "$k"
  done
  # Reopen and resume to the end.
  "$fdstore" ingest data "m$k" "$src" --pub k.pub >/dev/null 2>ingest.err ||
    { echo "FAIL: resume of v$k"; cat ingest.err; exit 1; }
  [ "$(readlink data/FileA/current)" = "v$k" ] || { echo "FAIL: current is not v$k"; exit 1; }
  got=$(sha256sum <data/FileA/current | cut -d' ' -f1)
  [ "$got" = "$(sum_of "$k")" ] || { echo "FAIL: v$k sha256 $got differs from the source"; exit 1; }
  [ ! -e "data/FileA/v$k.partial" ] && [ ! -e "data/FileA/v$k.bitmap" ] ||
    { echo "FAIL: v$k left its .partial or .bitmap"; exit 1; }
  "$fdstore" gc data FileA >/dev/null
done
echo "crash test: $kills SIGKILLs over $((k - 1)) versions; every resume matched its source's sha256"
