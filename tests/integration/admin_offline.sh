#!/usr/bin/env bash
# fdadmin without a cluster: --help everywhere, usage errors exit 2, keygen writes usable keys, cert and revoke sign what storage and the list reader accept, an unreachable service exits 3, a bad config or key file exits 2.
set -euo pipefail
F=$1/admin/fdadmin
[ -x "$F" ] || { echo "SKIP: $F not built"; exit 77; }
d=$(mktemp -d "${TMPDIR:-/tmp}/fdist-it-admin.XXXXXX")
trap 'rm -rf "$d"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() { # expect CODE CMD...
  local want=$1 rc=0
  shift
  "$@" >"$d/out" 2>"$d/err" || rc=$?
  [ $rc -eq "$want" ] || fail "$* exited $rc, want $want: $(head -c 300 "$d/err")"
}

expect 0 "$F" --help
expect 2 "$F"
expect 2 "$F" frobnicate
for c in keygen publish status versions nodes drain undrain gc cert revoke; do
  expect 0 "$F" "$c" --help
  grep -q "usage: fdadmin" "$d/out" || fail "$c --help prints no usage"
done

# keygen: an Ed25519 pair and a cluster key, private files 0600, never
# overwriting a cluster key.
expect 0 "$F" keygen "$d/admin.pem" "$d/admin.pub" --cluster "$d/cluster.key"
[ "$(stat -c %a "$d/admin.pem")" = 600 ] || fail "admin key is not mode 0600"
[ "$(stat -c %a "$d/cluster.key")" = 600 ] || fail "cluster key is not mode 0600"
grep -Eq '^[0-9a-f]{64}$' "$d/cluster.key" || fail "cluster key is not 64 hex chars"
grep -q "BEGIN PRIVATE KEY" "$d/admin.pem" || fail "admin key is not PEM"
grep -q "BEGIN PUBLIC KEY" "$d/admin.pub" || fail "admin public key is not PEM"
before=$(cat "$d/cluster.key")
expect 1 "$F" keygen --cluster "$d/cluster.key"
[ "$(cat "$d/cluster.key")" = "$before" ] || fail "keygen overwrote a cluster key"
# The key signs manifests the storage layer verifies (fdstore, same library).
if [ -x "$1/storage/fdstore" ]; then
  head -c 300000 /dev/urandom >"$d/file"
  "$1/storage/fdstore" manifest "$d/file" --name f --version 1 --key "$d/admin.pem" \
    --chunk-size 64K -o "$d/m" >/dev/null
  "$1/storage/fdstore" ingest "$d/store" "$d/m" "$d/file" --pub "$d/admin.pub" >/dev/null 2>&1 \
    || fail "a manifest signed with fdadmin's key does not verify against its public key"
fi

# cert: an origin certificate makes the key sign versions storage accepts;
# the writer's does not. Usage errors exit 2.
expect 0 "$F" keygen "$d/og.pem" "$d/og.pub"
expect 0 "$F" keygen "$d/w.pem" "$d/w.pub"
A=("$F" --admin-key "$d/admin.pem")
expect 0 "${A[@]}" cert --role origin --name og --days 2 "$d/og.pub" -o "$d/og.cert"
grep -q "origin 'og' key [0-9a-f]\{16\} valid" "$d/out" || fail "cert does not describe what it signed"
expect 0 "${A[@]}" cert --role writer --name w@x --days 1 "$d/w.pem" -o "$d/w.cert"
expect 2 "$F" cert --role origin --name og "$d/og.pub" -o "$d/x.cert"             # no admin key
expect 2 "${A[@]}" cert --role root --name og "$d/og.pub" -o "$d/x.cert"
expect 2 "${A[@]}" cert --role origin --name 'has space' "$d/og.pub" -o "$d/x.cert"
expect 2 "${A[@]}" cert --role origin --name og --days 0 "$d/og.pub" -o "$d/x.cert"
expect 2 "${A[@]}" cert --role origin --name og --days 3661 "$d/og.pub" -o "$d/x.cert"
expect 2 "${A[@]}" cert --role origin --name og "$d/admin.pub" -o "$d/x.cert"     # the admin key itself
expect 2 "${A[@]}" cert --role origin --name og "$d/missing.pub" -o "$d/x.cert"
expect 2 "${A[@]}" cert --role origin --name og "$d/og.pub"                       # no -o
if [ -x "$1/storage/fdstore" ]; then
  "$1/storage/fdstore" manifest "$d/file" --name f --version 2 --base 1 --key "$d/og.pem" \
    --cert "$d/og.cert" --chunk-size 64K -o "$d/m2" >/dev/null
  "$1/storage/fdstore" ingest "$d/store" "$d/m2" "$d/file" --pub "$d/admin.pub" >/dev/null 2>&1 \
    || fail "a manifest signed with a certified origin key does not verify"
  "$1/storage/fdstore" manifest "$d/file" --name f --version 3 --base 2 --key "$d/w.pem" \
    --cert "$d/w.cert" --chunk-size 64K -o "$d/m3" >/dev/null
  "$1/storage/fdstore" ingest "$d/store" "$d/m3" "$d/file" --pub "$d/admin.pub" >/dev/null 2>&1 \
    && fail "a manifest signed with a writer's key was accepted"
  rc=0; "$1/storage/fdstore" manifest "$d/file" --name f --version 3 --base 2 --key "$d/w.pem" \
    --cert "$d/og.cert" --chunk-size 64K -o "$d/m3" >/dev/null 2>&1 || rc=$?
  [ $rc -ne 0 ] || fail "fdstore signed with a key its certificate does not certify"
fi

# revoke: creates the list (serial 1), extends it (serial + 1), takes ids,
# certificates and key files, keeps a list unchanged when nothing is new,
# refuses the admin key and a list another admin signed.
expect 0 "${A[@]}" revoke "$d/og.cert" --list "$d/revoked.list"
grep -q "serial 1, 1 key(s) revoked" "$d/out" || fail "revoke did not start at serial 1: $(cat "$d/out")"
expect 0 "${A[@]}" revoke 00000000000000aa "$d/w.pem" --list "$d/revoked.list"
grep -q "serial 2, 3 key(s) revoked (2 added)" "$d/out" || fail "revoke did not extend the list: $(cat "$d/out")"
expect 0 "${A[@]}" revoke "$d/og.pub" --list "$d/revoked.list"
grep -q "unchanged (serial 2" "$d/out" || fail "revoking a revoked key changed the list"
expect 2 "${A[@]}" revoke "$d/admin.pub" --list "$d/revoked.list"
expect 2 "${A[@]}" revoke 123 --list "$d/revoked.list"
expect 2 "${A[@]}" revoke 00000000000000aa                                       # no --list
expect 2 "$F" revoke 00000000000000aa --list "$d/revoked.list"                   # no admin key
expect 0 "$F" keygen "$d/rogue.pem" "$d/rogue.pub"
expect 1 "$F" --admin-key "$d/rogue.pem" revoke 00000000000000bb --list "$d/revoked.list"
if [ -x "$1/storage/fdstore" ]; then
  "$1/storage/fdstore" manifest "$d/file" --name f --version 3 --base 2 --key "$d/og.pem" \
    --cert "$d/og.cert" --chunk-size 64K -o "$d/m3" >/dev/null
  "$1/storage/fdstore" ingest "$d/store" "$d/m3" "$d/file" --pub "$d/admin.pub" \
    --revocations "$d/revoked.list" >/dev/null 2>&1 && fail "a revoked origin key's version was accepted"
fi
# A writer's fdadmin (write, append, bump): the key and its certificate must
# match and the certificate be for role writer (usage, 2); a good pair gets
# as far as the network (nothing listens on port 1: 3).
W=("$F" --origins 127.0.0.1:1 --cluster-key "$d/cluster.key")
expect 2 "${W[@]}" --writer-key "$d/og.pem" --writer-cert "$d/w.cert" append x "$d/admin.pub"
expect 2 "${W[@]}" --writer-key "$d/og.pem" --writer-cert "$d/og.cert" append x "$d/admin.pub"
expect 3 "${W[@]}" --writer-key "$d/w.pem" --writer-cert "$d/w.cert" append x "$d/admin.pub"

# Usage errors: 2.
head -c 100000 /dev/urandom >"$d/f"
common=(--scheduler 127.0.0.1:1 --origins 127.0.0.1:1 --cluster-key "$d/cluster.key" --admin-key "$d/admin.pem")
expect 2 "$F" "${common[@]}" publish "$d/f"                       # no --name
expect 2 "$F" "${common[@]}" publish "$d/f" --name '.hidden'
expect 2 "$F" "${common[@]}" publish "$d/f" --name x --chunk-size 100K
expect 2 "$F" "${common[@]}" publish "$d/missing" --name x
expect 2 "$F" "${common[@]}" --admin-key "$d/admin.pub" publish "$d/f" --name x   # public key only
expect 2 "$F" --scheduler nowhere status                                        # no port, no key
echo "not a key" >"$d/bad.key"
expect 2 "$F" --scheduler 127.0.0.1:1 --cluster-key "$d/bad.key" status
expect 2 "$F" drain
expect 2 "$F" undrain
expect 2 "$F" "${common[@]}" drain n1 --timeout 0
expect 2 "$F" "${common[@]}" undrain n1 --no-wait
expect 2 "$F" "${common[@]}" gc
expect 2 "$F" --timeout-ms 5 status
printf '[admin]\nschedular = 127.0.0.1:1\n' >"$d/typo.ini"
expect 2 "$F" --config "$d/typo.ini" status
grep -q "schedular" "$d/err" || fail "the config error does not name the bad key"

# Nothing listens on port 1: exit 3 for every service command.
expect 3 "$F" "${common[@]}" status
expect 3 "$F" "${common[@]}" versions --json
expect 3 "$F" "${common[@]}" nodes
expect 3 "$F" "${common[@]}" drain n1
expect 3 "$F" "${common[@]}" undrain n1
expect 3 "$F" "${common[@]}" gc x
expect 3 "$F" "${common[@]}" publish "$d/f" --name x
# The same settings from a config file.
printf '[admin]\nscheduler = 127.0.0.1:1\ncluster_key = %s\n' "$d/cluster.key" >"$d/ok.ini"
expect 3 "$F" --config "$d/ok.ini" status
FDADMIN_CONFIG=$d/ok.ini expect 3 "$F" versions
echo "PASS admin_offline"
