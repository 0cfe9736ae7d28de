#!/usr/bin/env bash
# tests/integration/origin_cert.sh with every node running two engines (threads = 2): the serving engines check manifests through certificates and read the revocation list too.
IT_THREADS=2 exec bash "$(dirname "$0")/../integration/origin_cert.sh" "$1"
