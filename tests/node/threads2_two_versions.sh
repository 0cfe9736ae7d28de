#!/usr/bin/env bash
# tests/integration/two_versions.sh with every node running two engines (threads = 2).
IT_THREADS=2 exec bash "$(dirname "$0")/../integration/two_versions.sh" "$1"
