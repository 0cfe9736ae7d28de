#!/usr/bin/env bash
# clone_test.sh — on a loop-mounted XFS with reflink, a delta shares the unchanged chunks' blocks with the source (FICLONERANGE) instead of copying them: the new file is right, and the filesystem's used space grows by the changed chunks only.
set -euo pipefail
build=$1
fdstore=$build/storage/fdstore
# shellcheck source=loopfs.sh
. "$(dirname "$0")/loopfs.sh" fd-st-clone
# mkfs.xfs wants at least 300 MB; the image is sparse.
if loopfs_image 320M mkfs.xfs -q -f -m reflink=1; then
  mounted=xfs
else
  echo "skip: cannot make and mount an XFS with reflink here (xfsprogs, loop devices, root)"
  exit 77
fi
used_kib() { sync -f "$mnt"; df --output=used -k "$mnt" | tail -1 | tr -d ' '; }
cd "$work"
"$fdstore" keygen k.pem k.pub >/dev/null
# 64 MiB in 1 MiB chunks; v2 changes 2 of them, and its last chunk is short
# (a short chunk is always copied).
head -c $((64 * 1048576)) /dev/urandom >v1
cp v1 v2
for c in 5 40; do
  head -c 100 /dev/urandom | dd of=v2 bs=1 seek=$((c * 1048576 + 7)) conv=notrunc status=none
done
truncate -s $((64 * 1048576 - 4096 - 100)) v2
"$fdstore" manifest v1 --name FileA --version 1 --chunk-size 1M --key k.pem -o m1 >/dev/null
"$fdstore" manifest v2 --name FileA --version 2 --base 1 --chunk-size 1M --key k.pem -o m2 >/dev/null
"$fdstore" ingest "$mnt/data" m1 v1 --pub k.pub >/dev/null 2>&1
before=$(used_kib)
# As in delta_test.sh, the source offered for v2 has only the changed chunks
# right, so every other byte of v2 came from v1 on the XFS.
head -c $((64 * 1048576 - 4096 - 100)) /dev/zero >sparse
for c in 5 40 63; do
  dd if=v2 of=sparse bs=1048576 skip=$c seek=$c count=1 conv=notrunc status=none
done
out=$("$fdstore" ingest "$mnt/data" m2 sparse --pub k.pub 2>&1)
after=$(used_kib)
echo "$out" | grep -v '^20' || true
echo "$out" | grep -q "reused $((61 * 1048576)) bytes (61 chunks), written $((2 * 1048576 + 1048576 - 4096 - 100)) bytes (3 chunks)" ||
  { echo "FAIL: expected 61 chunks reused and 3 written"; exit 1; }
echo "$out" | grep -q " 61 chunks cloned" || { echo "FAIL: expected the 61 reused chunks cloned"; echo "$out"; exit 1; }
[ "$(sha256sum <"$mnt/data/FileA/current")" = "$(sha256sum <v2)" ] || { echo "FAIL: v2 differs"; exit 1; }
[ "$(sha256sum <"$mnt/data/FileA/v1")" = "$(sha256sum <v1)" ] || { echo "FAIL: v1 changed"; exit 1; }
grown=$((after - before))
echo "used space grew by $grown KiB for a 64 MiB version"
# A copy would add 64 MiB; shared blocks add the 3 new chunks plus metadata.
[ "$grown" -lt $((8 * 1024)) ] || { echo "FAIL: $grown KiB used: the blocks were copied, not shared"; exit 1; }
# Both versions read back clean through their (shared) blocks.
for ver in 1 2; do
  "$fdstore" scrub "$mnt/data" FileA --version $ver >/dev/null 2>&1 || { echo "FAIL: v$ver scrub"; exit 1; }
done
echo "clone test (xfs): 61 of 64 chunks shared with v1, $grown KiB written, both versions intact"
