#!/usr/bin/env bash
# package.sh — builds fdist's Debian package from this tree:
#   fdist_<version>_<arch>.deb  with fdnode, fdsched, fdadmin (/usr/bin), their
#   man pages (help2man from each --help), libfdclient (fdclient.h, a static
#   archive that holds the rpc and common code it needs, libfdclient.so.0 and
#   a pkg-config file), the systemd units (installed, not enabled), example
#   configs in /etc/fdist (conffiles) and the maintainer scripts that make the
#   fdist system user (packaging/debian/).
# usage: package.sh [--out DIR] [--revision N] [--version V] [--build-dir DIR]
#   --version V    the whole Debian version (default: the CMake project
#                  version + the git commit count and hash, "-N")
#   --revision N   the Debian revision of the default version (default 1);
#                  a rebuild with a higher N upgrades the one before
# Prints the .deb's path on stdout's last line.
#
# Why dpkg-deb from a staged tree and not debhelper: the build is CMake's
# own (`cmake --install` with DESTDIR, packaging/install.cmake), the version
# comes from git rather than a debian/changelog one edits, and only the
# targets that ship are built (not the tests). dpkg-shlibdeps computes
# Depends from the ELF files as dh_shlibdeps would; the maintainer scripts
# are the few lines dh_installsystemd/dh_installdeb would have written.
# lintian's findings and why each remaining one stays: packaging/README.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/dist
revision=1
version=
build=$root/build-pkg
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift ;;
    --revision) revision=$2; shift ;;
    --version) version=$2; shift ;;
    --build-dir) build=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
  esac
  shift
done
for t in dpkg-deb dpkg-shlibdeps help2man; do
  command -v "$t" >/dev/null || { echo "package.sh: needs $t (scripts/deps.sh installs it)" >&2; exit 1; }
done

upstream=$(sed -n 's/^project(fdist VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
if [ -z "$version" ]; then
  if git -C "$root" rev-parse HEAD >/dev/null 2>&1; then
    count=$(git -C "$root" rev-list --count HEAD)
    hash=$(git -C "$root" rev-parse --short=8 HEAD)
    version=$upstream+git$count.$hash-$revision
  else
    version=$upstream-$revision
  fi
fi
arch=$(dpkg --print-architecture)
maintainer=${FDIST_MAINTAINER:-fdist developers <fdist@example.org>}
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
# The changelog's date: the commit's, so a rebuild of one commit is the same.
date=$(git -C "$root" log -1 --format=%cD 2>/dev/null || date -R)
export SOURCE_DATE_EPOCH=$(date -d "$date" +%s)

# ---- build: Debian's hardening flags; only the shipped targets ----
# -DFDIST_CLIENT_SHARED=ON builds libfdclient.so (common/ and rpc/ as PIC).
# hardening=+all adds bindnow (-z now) to Debian's default relro, PIE,
# stack protector and _FORTIFY_SOURCE=2.
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cflags="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CFLAGS)"
ldflags=$(dpkg-buildflags --get LDFLAGS)
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DFDIST_CLIENT_SHARED=ON -DCMAKE_C_FLAGS="$cflags" \
  -DCMAKE_EXE_LINKER_FLAGS="$ldflags" -DCMAKE_SHARED_LINKER_FLAGS="$ldflags" >/dev/null
cmake --build "$build" -j "$(nproc)" --target fdnode fdsched fdadmin fdclient fdclient_shared >&2

# ---- stage ----
work=$(mktemp -d "${TMPDIR:-/tmp}/fdist-pkg.XXXXXX")
trap 'rm -rf "$work"' EXIT
st=$work/stage
DESTDIR=$st cmake --install "$build" >/dev/null
lib=$st/usr/lib/$multiarch
[ -f "$lib/libfdclient.a" ] || { echo "package.sh: cmake --install put no libfdclient.a in usr/lib/$multiarch" >&2; exit 1; }

# libfdclient.a on its own would leave fd_rpc's, fd_rpc_proto's and
# fd_common's symbols undefined: one archive holds all four.
a() { find "$build" -name "$1" -print -quit; }
{
  echo "create $work/libfdclient.a"
  for l in libfdclient.a libfd_rpc.a libfd_rpc_proto.a libfd_common.a; do
    p=$(a "$l"); [ -n "$p" ] || { echo "package.sh: $l not built" >&2; exit 1; }
    echo "addlib $p"
  done
  echo save; echo end
} | ar -M
ranlib "$work/libfdclient.a"
install -m 0644 "$work/libfdclient.a" "$lib/libfdclient.a"

strip --strip-unneeded --remove-section=.comment --remove-section=.note \
  "$st"/usr/bin/fdnode "$st"/usr/bin/fdsched "$st"/usr/bin/fdadmin "$lib"/libfdclient.so.*.*
strip --strip-debug --enable-deterministic-archives --remove-section=.comment "$lib/libfdclient.a"
chmod 0644 "$lib"/libfdclient.so.*.*

mkdir -p "$lib/pkgconfig"
cat >"$lib/pkgconfig/fdclient.pc" <<EOPC
prefix=/usr
libdir=\${prefix}/lib/$multiarch
includedir=\${prefix}/include

Name: fdclient
Description: fdist writers' client library (fdclient.h)
Version: $upstream
Libs: -L\${libdir} -lfdclient
Libs.private: -lisal -lcrypto -linih -ljemalloc -luring -lprotobuf-c -lpthread
Cflags: -I\${includedir}
EOPC

install -D -m 0644 "$root/packaging/fdnode.service" "$st/lib/systemd/system/fdnode.service"
install -D -m 0644 "$root/packaging/fdsched.service" "$st/lib/systemd/system/fdsched.service"
# The configs hold no secret (the keys are files of their own, 0640, that
# the operator adds); the postinst makes /etc/fdist root:fdist 0750.
for f in fdnode.ini fdsched.ini fdadmin.ini; do
  install -D -m 0644 "$root/packaging/etc/$f" "$st/etc/fdist/$f"
done
mkdir -p "$st/usr/share/lintian/overrides"
sed "s/@MULTIARCH@/$multiarch/g" "$root/packaging/debian/lintian-overrides" >"$st/usr/share/lintian/overrides/fdist"
chmod 0644 "$st/usr/share/lintian/overrides/fdist"

# Man pages from each program's --help (help2man; the version is given, as
# the programs have no --version).
man=$st/usr/share/man/man1
mkdir -p "$man"
hm() { # NAME BINARY "one-line description"
  help2man -N --no-discard-stderr --version-string="$upstream" -n "$3" -s 1 \
    -o "$work/$1.1" "$2"
  gzip -9n -c "$work/$1.1" >"$man/$1.1.gz"
  chmod 0644 "$man/$1.1.gz"
}
hm fdnode "$st/usr/bin/fdnode" "fdist node daemon (roles node and origin)"
hm fdsched "$st/usr/bin/fdsched" "fdist scheduler daemon"
hm fdadmin "$st/usr/bin/fdadmin" "fdist command-line client: publish, status, drain, keys, writes"

doc=$st/usr/share/doc/fdist
mkdir -p "$doc"
install -m 0644 "$root/packaging/debian/copyright" "$doc/copyright"
{
  printf 'fdist (%s) unstable; urgency=medium\n\n' "$version"
  printf '  * Built from %s.\n\n' "$(git -C "$root" log -1 --format='commit %h' 2>/dev/null || echo 'a source tree without git')"
  printf ' -- %s  %s\n' "$maintainer" "$date"
} | gzip -9n >"$doc/changelog.Debian.gz"
chmod 0644 "$doc/changelog.Debian.gz"

# ---- control ----
mkdir -p "$st/DEBIAN" "$work/debian"
printf 'Source: fdist\n\nPackage: fdist\nArchitecture: any\n' >"$work/debian/control"
shlib=$(cd "$work" && dpkg-shlibdeps -O -e"$st/usr/bin/fdnode" -e"$st/usr/bin/fdsched" \
  -e"$st/usr/bin/fdadmin" -e"$(ls "$lib"/libfdclient.so.*.*)" 2>"$work/shlibdeps.err") ||
  { cat "$work/shlibdeps.err" >&2; exit 1; }
depends=$(sed -n 's/^shlibs:Depends=//p' <<<"$shlib")
depends="adduser, $depends"
size=$(du -sk --exclude=DEBIAN "$st" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@MAINTAINER@/$maintainer/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
  "$root/packaging/debian/control.in" >"$st/DEBIAN/control"
install -m 0644 "$root/packaging/debian/conffiles" "$root/packaging/debian/triggers" "$st/DEBIAN/"
sed "s/@UPSTREAM@/$upstream/" "$root/packaging/debian/shlibs" >"$st/DEBIAN/shlibs"
# symbols: every symbol fdclient.map exports, since this upstream version.
{
  echo "libfdclient.so.0 fdist #MINVER#"
  echo "* Build-Depends-Package: fdist"
  nm -D --defined-only "$(ls "$lib"/libfdclient.so.*.*)" |
    awk -v v="$upstream" '{ if (!sub("@@", "@", $3)) $3 = $3 "@" $3; print " " $3 " " v }' | LC_ALL=C sort
} >"$st/DEBIAN/symbols"
chmod 0644 "$st/DEBIAN/shlibs" "$st/DEBIAN/symbols"
install -m 0755 "$root/packaging/debian/postinst" "$root/packaging/debian/prerm" \
  "$root/packaging/debian/postrm" "$st/DEBIAN/"
(cd "$st" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort |
  xargs md5sum) >"$st/DEBIAN/md5sums"
chmod 0644 "$st/DEBIAN/md5sums"
find "$st" -type d -exec chmod 0755 {} +

mkdir -p "$out"
deb=$out/fdist_${version}_$arch.deb
# --root-owner-group: every file root:root in the archive (the postinst
# gives /etc/fdist to group fdist); fakeroot only where it is missing.
dpkg-deb --root-owner-group -Zxz --build "$st" "$deb" >&2
echo "$deb"
