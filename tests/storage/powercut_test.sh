#!/usr/bin/env bash
# powercut_test.sh — test_storage_powercut (power cuts below the store) on a loop-mounted XFS with reflink, so that delta clones are cut too; on /var/tmp where this machine cannot make one. FDIST_POWERCUT_CUTS and FDIST_POWERCUT_SEED pass through.
set -euo pipefail
build=$1
# shellcheck source=loopfs.sh
. "$(dirname "$0")/loopfs.sh" fd-st-powercut
if loopfs_image 320M mkfs.xfs -q -f -m reflink=1; then
  mounted=xfs
  dir=$mnt
else
  echo "note: cannot make and mount an XFS with reflink here (xfsprogs, loop devices, root): clones are not cut"
  dir=$work
fi
FDIST_POWERCUT_DIR=$dir "$build/tests/storage/test_storage_powercut"
