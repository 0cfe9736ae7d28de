#!/usr/bin/env bash
# fresh-check.sh — runs one of the README's two commands in a pristine Debian 12
# root (debootstrap --variant=minbase bookworm), the way a fresh machine would:
# nothing installed but what the tree's own scripts install.
#
# The pristine root is made once and cached as a tarball (--rebuild makes it
# anew); each run unpacks it into a temp dir, copies the source in, mounts
# /proc, /sys, /dev (bound, for loop devices and /dev/shm), /dev/pts and a
# tmpfs /run, copies the host's DNS and Debian apt sources in, and runs the
# command with chroot as root (or, --user, as a user with sudo) under a Debian
# 12 login's limits. All of it happens in a mount namespace of its
# own; on exit, error or Ctrl-C every process left in the root is stopped,
# every mount under it is unmounted and the copy is removed: only the cache
# stays. Not part of CI (it needs root and minutes of downloads).
set -euo pipefail

self=$(readlink -f "$0")
root_src=$(cd "$(dirname "$self")/.." && pwd)
cache_dir=${FDIST_FRESH_CACHE:-/var/cache/fdist-fresh}
suite=bookworm

usage() {
  cat <<EOF
usage: scripts/fresh-check.sh [options] test|demo [ARGS...]
Runs ./scripts/test.sh (test) or ./scripts/demo.sh ARGS (demo) inside
a pristine Debian 12 root made by 'debootstrap --variant=minbase $suite'.
  --head        copy the committed HEAD of this tree (git archive HEAD), what a
                clean clone such as CI's sees (default)
  --worktree    copy the working tree as it is: tracked files as on disk and
                untracked files git does not ignore (no build dirs)
  --rebuild     make the cached pristine root anew (debootstrap, a few minutes)
  --user        run as an ordinary user with sudo (installed in the copy, no
                password asked), the README's other case; default: as root
  --keep        keep the unpacked root afterwards (mounts are still removed)
  -h, --help    this text
The cache is $cache_dir (FDIST_FRESH_CACHE overrides); the mirror is the
host's Debian one, read from /etc/apt/sources.list{,.d/*}. FDIST_* variables
(e.g. FDIST_FUZZ_SECONDS) are passed to the command. Exits with the command's
exit code (or non-zero if setting up the root fails).
examples:
  scripts/fresh-check.sh test
  scripts/fresh-check.sh --worktree demo --size-mib 256
EOF
}

source_mode=head rebuild= keep= user=
while [ $# -gt 0 ]; do
  case "$1" in
    --head) source_mode=head ;;
    --worktree) source_mode=worktree ;;
    --rebuild) rebuild=1 ;;
    --keep) keep=1 ;;
    --user) user=fresh ;;
    -h | --help) usage; exit 0 ;;
    --in-namespace) shift; break ;;   # internal: the re-exec below
    -*) echo "fresh-check.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
cmd=${1:-}
case "$cmd" in
  test) inner=./scripts/test.sh ;;
  demo) inner=./scripts/demo.sh ;;
  *) echo "fresh-check.sh: say test or demo" >&2; usage >&2; exit 2 ;;
esac
shift
[ "$(id -u)" -eq 0 ] || { echo "fresh-check.sh: needs root (debootstrap, chroot, mount)" >&2; exit 1; }

t_start=$SECONDS
say() { printf '[fresh-check %4ds] %s\n' $((SECONDS - t_start)) "$*" >&2; }

# The mounts go in a mount namespace of this script's own: the host never sees
# them, and they go away with the namespace even if this script is killed.
if [ -z "${FDIST_FRESH_IN_NS:-}" ]; then
  opts=()
  [ "$source_mode" = worktree ] && opts+=(--worktree)
  [ -n "$rebuild" ] && opts+=(--rebuild)
  [ -n "$keep" ] && opts+=(--keep)
  [ -n "$user" ] && opts+=(--user)
  FDIST_FRESH_IN_NS=1 exec unshare --mount --propagation private -- \
    "$self" "${opts[@]}" --in-namespace "$cmd" "$@"
fi

# ---- the host's Debian mirror ----
# The first URI that serves $suite itself (not -updates/-security), from
# deb822 .sources files or one-line .list files; deb.debian.org otherwise.
host_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$suite" '
      /^[[:space:]]*$/ { if (u != "" && ok) { print u; exit } u = ""; ok = 0; next }
      tolower($1) == "uris:" { u = $2 }
      tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
      END { if (u != "" && ok) print u }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v s="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++; if ($2 ~ /^\[/) i++;
                                     if ($(i + 1) == s) print $i }' "$f"
  done
  echo http://deb.debian.org/debian
}
mirror=$(host_mirror | awk 'NR == 1')

# ---- the cached pristine root ----
cache=$cache_dir/$suite-minbase-$(dpkg --print-architecture).tar
if [ -n "$rebuild" ] || [ ! -s "$cache" ]; then
  if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap on the host"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  fi
  mkdir -p "$cache_dir"
  build=$(mktemp -d "$cache_dir/build.XXXXXX")
  trap 'umount -R "$build/root" 2>/dev/null || true; rm -rf --one-file-system "$build"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  say "debootstrap --variant=minbase $suite from $mirror (cached in $cache)"
  t0=$SECONDS
  debootstrap --variant=minbase "$suite" "$build/root" "$mirror" >"$build/debootstrap.log" 2>&1 ||
    { tail -n 30 "$build/debootstrap.log" >&2; say "debootstrap failed"; exit 1; }
  # What a fresh install leaves out: apt's downloaded packages.
  rm -rf "$build/root/var/cache/apt/archives/"*.deb
  tar -C "$build/root" --numeric-owner -cf "$cache.new" .
  mv "$cache.new" "$cache"
  rm -rf --one-file-system "$build"
  trap - EXIT INT TERM
  say "pristine root made in $((SECONDS - t0)) s: $(du -h "$cache" | cut -f1)"
else
  say "pristine root from cache $cache (made $(date -r "$cache" '+%F %R'); --rebuild to make it anew)"
fi

# ---- unpack, copy the source, mount ----
work=$(mktemp -d /var/tmp/fdist-fresh.XXXXXX)
root=$work/root
inner_pid=

# Every process whose root is inside $root: started by this run, and only those.
chroot_pids() {
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case "$r" in "$root" | "$root"/*) echo "${p#/proc/}" ;; esac
  done
}
# Mount points under $work, deepest (last mounted) first.
work_mounts() { awk -v w="$work" '$5 == w || index($5, w "/") == 1 { print $5 }' /proc/self/mountinfo | tac; }

cleanup() {
  local rc=$? pids m n
  # A second Ctrl-C (or timeout passing the first one on) must not cut the
  # teardown short.
  trap - EXIT
  trap '' INT TERM
  set +e
  pids=$(chroot_pids)
  if [ -n "$pids" ]; then
    say "stopping processes left in the root: $(echo $pids)"
    kill -TERM $pids 2>/dev/null
    for n in $(seq 50); do pids=$(chroot_pids); [ -z "$pids" ] && break; sleep 0.2; done
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null && sleep 0.5
  fi
  for n in 1 2 3; do
    for m in $(work_mounts); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
    [ -z "$(work_mounts)" ] && break
  done
  if [ -n "$(work_mounts)" ]; then
    say "could not unmount: $(work_mounts | tr '\n' ' '); leaving $work in place"
  elif [ -n "$keep" ]; then
    say "kept the root in $root (nothing mounted)"
  else
    rm -rf --one-file-system "$work" && say "removed $work; mounts torn down"
  fi
  say "total elapsed $((SECONDS - t_start)) s; '$cmd' exit code $rc"
  exit $rc
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

say "unpacking the pristine root into $root"
mkdir "$root"
tar -C "$root" --numeric-owner -xpf "$cache"

home=/root
if [ -n "$user" ]; then
  home=/home/$user
  chroot "$root" useradd -m -s /bin/bash -G sudo "$user"
fi
dest=$root$home/fdist
mkdir -p "$dest"
if [ "$source_mode" = head ]; then
  rev=$(git -C "$root_src" rev-parse --short HEAD)
  say "copying the source: git archive HEAD ($rev) of $root_src"
  git -C "$root_src" archive HEAD | tar -C "$dest" -xf -
else
  say "copying the source: the working tree of $root_src (tracked and untracked, not ignored)"
  (cd "$root_src" && git ls-files -z --cached --others --exclude-standard |
     xargs -0 -r sh -c 'for f; do [ -e "$f" ] || [ -L "$f" ] && printf "%s\0" "$f"; done' sh |
     tar --null -T - -cf -) | tar -C "$dest" -xf -
fi

say "mounting /proc, /sys, /dev (bound), /dev/pts, /dev/shm, /run (tmpfs); copying resolv.conf and apt sources"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$root/run"
mkdir -p "$root/run/lock"
# A real machine's resolv.conf and its Debian sources (main, updates, security),
# without the host's third-party repositories.
rm -f "$root/etc/resolv.conf"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
: >"$root/etc/apt/sources.list"
have_sources=
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  if grep -Eq "^[^#]*(URIs:|deb ).*/debian(-security)?/?( |$)" "$f" && grep -q "$suite" "$f"; then
    cp "$f" "$root/etc/apt/sources.list.d/host-$(basename "$f" | sed 's/^sources\.list$/sources.list.list/')"
    have_sources=1
  fi
done
[ -n "$have_sources" ] || echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"
# debootstrap writes no /etc/hosts; an installed Debian has this one.
[ -s "$root/etc/hosts" ] ||
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
    "$(uname -n)" >"$root/etc/hosts"

if [ -n "$user" ]; then
  # What the Debian installer leaves when no root password is given: a user
  # in group sudo. NOPASSWD because the command runs without a terminal.
  say "--user: installing sudo in the copy; user $user is in group sudo, no password asked"
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    /bin/sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends sudo >/dev/null' </dev/null
  echo "$user ALL=(ALL) NOPASSWD: ALL" >"$root/etc/sudoers.d/fresh-check"
  chmod 0440 "$root/etc/sudoers.d/fresh-check"
  chroot "$root" chown -R "$user:$user" "$home/fdist"
fi

# ---- run ----
pass=()
while IFS='=' read -r k _; do pass+=("$k=${!k}"); done < <(env | grep -E '^FDIST_[A-Z0-9_]*=' | grep -v '^FDIST_FRESH_')
# A login on Debian 12 gets systemd's and the kernel's defaults, not whatever
# this host's session has: open files 1024 (hard 524288), locked memory 8 MiB.
# A hard limit is only lowered (raising it needs CAP_SYS_RESOURCE).
nofile_hard=$(ulimit -Hn)
[ "$nofile_hard" = unlimited ] || [ "$nofile_hard" -gt 524288 ] && nofile_hard=524288
limits=(--nofile=1024:"$nofile_hard" --memlock=8388608:8388608)
path=/usr/local/bin:/usr/bin:/bin
[ -n "$user" ] || path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
say "running: chroot ${user:+--userspec=$user:$user }$root /bin/bash -c 'cd ~/fdist && $inner $*'"
say "  as ${user:-root}, stdin /dev/null, limits as on a Debian 12 login: ${limits[*]}${pass:+, ${pass[*]}}"
t0=$SECONDS
set +e
# In the background so that Ctrl-C or SIGTERM reaches the trap at once; the
# trap then stops what runs in the root.
env -i HOME="$home" USER="${user:-root}" LOGNAME="${user:-root}" PATH="$path" \
  TERM="${TERM:-dumb}" "${pass[@]}" \
  "$(command -v prlimit)" "${limits[@]}" -- "$(command -v chroot)" ${user:+--userspec="$user:$user"} "$root" \
  /bin/bash -c 'cd ~/fdist && exec "$@"' fresh "$inner" "$@" </dev/null &
inner_pid=$!
wait "$inner_pid"
rc=$?
set -e
say "'$inner $*' exited $rc after $((SECONDS - t0)) s"
exit $rc
