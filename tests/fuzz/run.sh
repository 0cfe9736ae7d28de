#!/usr/bin/env bash
# Runs one libFuzzer target for a fixed time over its seed corpus.
# usage: run.sh TARGET CORPUS_DIR WORK_DIR SECONDS
set -euo pipefail
target=$1 corpus=$2 work=$3 seconds=$4
mkdir -p "$work/new" "$work/artifacts"
# New inputs go to a scratch dir so the repo's seed corpus stays as committed.
exec "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1 "$work/new" "$corpus"
