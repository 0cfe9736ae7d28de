#!/usr/bin/env bash
# tests/integration/auth_and_signature.sh with every node running two engines (threads = 2).
IT_THREADS=2 exec bash "$(dirname "$0")/../integration/auth_and_signature.sh" "$1"
