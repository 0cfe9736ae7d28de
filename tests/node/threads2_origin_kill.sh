#!/usr/bin/env bash
# tests/integration/origin_kill.sh with every node running two engines (threads = 2).
IT_THREADS=2 exec bash "$(dirname "$0")/../integration/origin_kill.sh" "$1"
