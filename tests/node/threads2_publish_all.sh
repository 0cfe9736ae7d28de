#!/usr/bin/env bash
# tests/integration/publish_all.sh with every node running two engines (threads = 2).
IT_THREADS=2 exec bash "$(dirname "$0")/../integration/publish_all.sh" "$1"
