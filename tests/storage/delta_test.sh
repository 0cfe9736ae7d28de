#!/usr/bin/env bash
# delta_test.sh — through fdstore: a version with 1% of its chunks changed takes only those chunks from the source; the rest is reused locally.
set -euo pipefail
build=$1
fdstore=$build/storage/fdstore
work=$(mktemp -d /var/tmp/fd-st-delta-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$fdstore" keygen k.pem k.pub >/dev/null
# 400 chunks of 64 KiB; v2 changes 4 of them (1%).
head -c $((400 * 65536)) /dev/urandom >v1
cp v1 v2
for c in 7 99 250 399; do
  head -c 100 /dev/urandom | dd of=v2 bs=1 seek=$((c * 65536 + 50)) conv=notrunc status=none
done
"$fdstore" manifest v1 --name FileA --version 1 --chunk-size 64K --key k.pem -o m1 >/dev/null
"$fdstore" manifest v2 --name FileA --version 2 --base 1 --chunk-size 64K --key k.pem -o m2 >/dev/null
"$fdstore" ingest data m1 v1 --pub k.pub >/dev/null 2>&1
# Hide the source's unchanged chunks: a source with only the changed chunks
# right (the rest zeros) still yields v2, so nothing else came from it.
head -c $((400 * 65536)) /dev/zero >sparse
for c in 7 99 250 399; do
  dd if=v2 of=sparse bs=65536 skip=$c seek=$c count=1 conv=notrunc status=none
done
out=$("$fdstore" ingest data m2 sparse --pub k.pub 2>&1)
echo "$out" | grep -v '^20'
echo "$out" | grep -q "reused $((396 * 65536)) bytes (396 chunks), written $((4 * 65536)) bytes (4 chunks)" ||
  { echo "FAIL: expected 396 chunks reused and 4 written"; exit 1; }
[ "$(sha256sum <data/FileA/current)" = "$(sha256sum <v2)" ] || { echo "FAIL: v2 differs"; exit 1; }
echo "delta test: 1% changed -> 4 of 400 chunks from the source"
