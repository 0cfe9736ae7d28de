#!/usr/bin/env bash
# diskfull_test.sh — on a small loop-mounted ext4 (or size-limited tmpfs) an ingest that does not fit fails with ENOSPC and damages nothing already stored.
set -euo pipefail
build=$1
fdstore=$build/storage/fdstore
# shellcheck source=loopfs.sh
. "$(dirname "$0")/loopfs.sh" fd-st-full
if loopfs_image 40M mkfs.ext4 -q -F; then
  mounted=ext4
elif mount -t tmpfs -o size=40m tmpfs "$mnt" 2>/dev/null; then
  mounted=tmpfs
else
  echo "skip: cannot mount a small filesystem here"
  exit 77
fi
cd "$work"
"$fdstore" keygen k.pem k.pub >/dev/null
head -c $((16 * 1024 * 1024)) /dev/urandom >A
head -c $((30 * 1024 * 1024)) /dev/urandom >B
"$fdstore" manifest A --name FileA --version 1 --chunk-size 64K --key k.pem -o m1 >/dev/null
"$fdstore" manifest B --name FileA --version 2 --base 1 --chunk-size 64K --key k.pem -o m2 >/dev/null
if ! "$fdstore" ingest "$mnt/data" m1 A --pub k.pub >/dev/null 2>err; then
  if grep -q "Invalid argument" err && [ "$mounted" = tmpfs ]; then
    echo "skip: no O_DIRECT on this tmpfs"; exit 77
  fi
  echo "FAIL: v1 should fit"; cat err; exit 1
fi
df -h "$mnt" | tail -1
rc=0
"$fdstore" ingest "$mnt/data" m2 B --pub k.pub >out 2>err || rc=$?
cat err
[ "$rc" -eq 1 ] || { echo "FAIL: ingest of a version that cannot fit exited $rc"; exit 1; }
grep -q "No space left on device" err || { echo "FAIL: no ENOSPC reported"; exit 1; }
# Nothing damaged: v1 is current, whole, scrubs clean; the store opens.
[ "$(readlink "$mnt/data/FileA/current")" = v1 ] || { echo "FAIL: current moved"; exit 1; }
[ "$(sha256sum <"$mnt/data/FileA/current")" = "$(sha256sum <A)" ] || { echo "FAIL: v1 damaged"; exit 1; }
"$fdstore" scrub "$mnt/data" FileA >/dev/null 2>&1 || { echo "FAIL: v1 does not scrub clean"; exit 1; }
"$fdstore" list "$mnt/data" FileA | grep -qx "v1 (current)" || { echo "FAIL: list"; exit 1; }
[ ! -e "$mnt/data/FileA/v2" ] || { echo "FAIL: a v2 appeared"; exit 1; }
# Once v1 is collected there is room: v2 then goes in whole.
rm "$mnt/data/FileA/current" "$mnt/data/FileA/v1" "$mnt/data/FileA/v1.manifest"
"$fdstore" ingest "$mnt/data" m2 B --pub k.pub >/dev/null 2>&1 || { echo "FAIL: v2 after freeing space"; exit 1; }
[ "$(sha256sum <"$mnt/data/FileA/current")" = "$(sha256sum <B)" ] || { echo "FAIL: v2 content"; exit 1; }
echo "disk-full test ($mounted): ENOSPC reported, v1 untouched, v2 fits once space is freed"
