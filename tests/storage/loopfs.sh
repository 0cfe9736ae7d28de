# loopfs.sh — sourced by the storage tests that need a filesystem of their own.
#
#   . loopfs.sh NAME      makes $work (/var/tmp/NAME-XXXXXX) and $mnt in it, and an
#                         EXIT trap that unmounts $mnt (if mounted) and removes $work
#   loopfs_image SIZE MKFS [ARGS...]
#                         makes a filesystem with MKFS ARGS in a sparse SIZE image
#                         and loop-mounts it on $mnt; non-zero if any step fails
# $mounted names what is mounted (set by the caller after a success).
work=$(mktemp -d "/var/tmp/$1-XXXXXX")
mnt=$work/mnt
mounted=
loopfs_cleanup() {
  if [ -n "$mounted" ]; then umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap loopfs_cleanup EXIT
mkdir -p "$mnt"

loopfs_image() {
  local size=$1
  shift
  command -v "$1" >/dev/null && truncate -s "$size" "$work/img" &&
    "$@" "$work/img" >/dev/null 2>&1 && mount -o loop "$work/img" "$mnt" 2>/dev/null
}
