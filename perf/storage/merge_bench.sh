#!/usr/bin/env bash
# merge_bench.sh — st_merge_build of a version from a SIZE base with 1% of its
# chunks touched (bench_merge), on the disk of --dir (ext4 here: the base is
# copied, copy_file_range) and on a loop-mounted XFS with reflink made in it
# (the base is cloned), with fio's sequential read and write of SIZE on the
# same disk for the floor of a copy (read SIZE + write SIZE). Not part of
# ctest; the XFS part needs root, xfsprogs and a loop device.
set -euo pipefail
usage() {
  cat <<USAGE
usage: merge_bench.sh [--build DIR] [--dir DIR] [--size BYTES] [--chunk-size BYTES] [--touched F]
  --build       build directory holding perf/storage/bench_merge (default: ./build)
  --dir         directory on the disk under test (default: /var/tmp)
  --size        base size, K/M/G suffixes (default: 1G)
  --chunk-size  chunk size (default: 4M)
  --touched     share of chunks written (default: 0.01)
Everything it creates is deleted when it exits.
USAGE
}
build=./build dir=/var/tmp size=1G cs=4M touched=0.01
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --chunk-size) cs=$2; shift 2 ;;
    --touched) touched=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
bench=$(cd "$build" && pwd)/perf/storage/bench_merge
[ -x "$bench" ] || { echo "no $bench: build first (./scripts/build.sh release)" >&2; exit 1; }
bytes=$(numfmt --from=iec "$size")
# $work and $mnt under /var/tmp for the XFS image, unmounted and removed at exit.
# shellcheck source=SCRIPTDIR/../../tests/storage/loopfs.sh
. "$(dirname "$0")/../../tests/storage/loopfs.sh" fd-merge-bench
disk=$(mktemp -d "$dir/fd-merge-bench-XXXXXX")
trap 'rm -rf "$disk"; loopfs_cleanup' EXIT
settle() { sync; sleep 3; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
echo "disk: $(df --output=source "$dir" | tail -1) ($(df --output=fstype "$dir" | tail -1)) at $dir"
if command -v fio >/dev/null; then
  fio_bw() { # rw
    fio --name=ref --filename="$disk/fio.dat" --rw="$1" --bs=1M --iodepth=16 --ioengine=io_uring \
      --direct=1 --size="$bytes" --end_fsync=1 --output-format=json |
      python3 -c "import json,sys; j=json.load(sys.stdin)['jobs'][0]; print('%.3f' % (j['$1']['bw_bytes'] / 1e9))"
  }
  settle
  w=$(fio_bw write)
  r=$(fio_bw read)
  rm -f "$disk/fio.dat"
  echo "fio (io_uring, O_DIRECT, bs=1M, iodepth=16, $size): write $w GB/s, read $r GB/s;" \
    "a copy of $size reads and writes it: floor $(python3 -c "print('%.0f' % (1000 * $bytes / 1e9 * (1 / $w + 1 / $r)))") ms"
fi
settle
echo "$(df --output=fstype "$dir" | tail -1):      $("$bench" --dir "$disk" --size "$size" --chunk-size "$cs" --touched "$touched")"
settle
echo "$(df --output=fstype "$dir" | tail -1) copy: $("$bench" --dir "$disk" --size "$size" --chunk-size "$cs" --touched "$touched" --no-clone)"
if loopfs_image $((2 * bytes + (512 << 20))) mkfs.xfs -q -f -m reflink=1; then
  mounted=xfs
  settle
  echo "xfs (loop, reflink): $("$bench" --dir "$mnt" --size "$size" --chunk-size "$cs" --touched "$touched")"
else
  echo "xfs: cannot make and mount a loop XFS with reflink here (root, xfsprogs, loop devices)"
fi
