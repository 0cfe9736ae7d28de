#!/usr/bin/env bash
# merge_clone_test.sh — test_storage_merge on a loop-mounted XFS with reflink: the merge clones its base (FICLONERANGE) instead of copying it, the used space grows by the touched chunks only, and every file and manifest is as on any other filesystem.
set -euo pipefail
build=$1
# shellcheck source=loopfs.sh
. "$(dirname "$0")/loopfs.sh" fd-st-merge-clone
# mkfs.xfs wants at least 300 MB; the image is sparse.
if loopfs_image 320M mkfs.xfs -q -f -m reflink=1; then
  mounted=xfs
else
  echo "skip: cannot make and mount an XFS with reflink here (xfsprogs, loop devices, root)"
  exit 77
fi
FDIST_STORAGE_TEST_DIR=$mnt FDIST_MERGE_EXPECT_CLONE=1 "$build/tests/storage/test_storage_merge"
echo "merge clone test (xfs): passed"
