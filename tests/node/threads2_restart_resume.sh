#!/usr/bin/env bash
# tests/integration/restart_resume.sh with every node running two engines (threads = 2).
IT_THREADS=2 exec bash "$(dirname "$0")/../integration/restart_resume.sh" "$1"
