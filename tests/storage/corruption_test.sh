#!/usr/bin/env bash
# corruption_test.sh — one byte flipped in a stored version is found by `fdstore scrub` and the chunk is named.
set -euo pipefail
build=$1
fdstore=$build/storage/fdstore
work=$(mktemp -d /var/tmp/fd-st-corrupt-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$fdstore" keygen k.pem k.pub >/dev/null
head -c $((8 * 1024 * 1024 + 77)) /dev/urandom >src
"$fdstore" manifest src --name FileA --version 1 --chunk-size 64K --key k.pem -o m1 >/dev/null
"$fdstore" ingest data m1 src --pub k.pub >/dev/null 2>&1
"$fdstore" scrub data FileA >out 2>&1 || { echo "FAIL: clean version reported bad"; cat out; exit 1; }

# Flip one byte inside chunk 37.
off=$((37 * 65536 + 1234))
byte=$(dd if=data/FileA/v1 bs=1 skip=$off count=1 status=none | od -An -tu1 | tr -d ' ')
printf "\\$(printf '%03o' $(((byte + 1) % 256)))" |
  dd of=data/FileA/v1 bs=1 seek=$off conv=notrunc status=none
rc=0
"$fdstore" scrub data FileA --rate 64M >out 2>&1 || rc=$?
cat out
[ "$rc" -eq 1 ] || { echo "FAIL: scrub exit $rc, wanted 1"; exit 1; }
grep -q "^BAD FileA v1 chunk 37 (offset 2424832)" out || { echo "FAIL: chunk 37 not named"; exit 1; }
[ "$(grep -c '^BAD' out)" -eq 1 ] || { echo "FAIL: other chunks reported"; exit 1; }
grep -q "1 bad" out || { echo "FAIL: no summary"; exit 1; }
echo "corruption test: scrub named chunk 37"
