#!/usr/bin/env bash
# libfdclient.so exports exactly the functions fdclient.h declares.
# usage: check_exports.sh LIBFDCLIENT.so fdclient.h
set -euo pipefail
lib=$1 header=$2
want=$(grep -oE '\bfdc_[a-z_]+\(' "$header" | tr -d '(' | sort -u)
got=$(nm -D --defined-only "$lib" | awk '$2 != "A" {sub(/@.*/, "", $3); print $3}' | sort -u)
[[ -n "$want" ]] || { echo "no fdc_ function found in $header"; exit 1; }
if [[ "$got" != "$want" ]]; then
  echo "exports differ from $header's functions (< exported, > declared):"
  diff <(echo "$got") <(echo "$want") || true
  exit 1
fi
echo "$(echo "$got" | wc -l) functions exported, each declared in $(basename "$header")"
