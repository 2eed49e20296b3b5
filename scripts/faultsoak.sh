#!/usr/bin/env bash
# Registry and Azure Blob fault soak (issue 22): push, pull and cache export (registry and Azure
# Blob) through the testkit's fault proxy (crates/ocibuild-testkit/src/proxy.rs), each run with
# a random plan of connection resets, 5xx, 429s (with and without Retry-After) and blob bodies
# cut in half. Every run must complete or fail cleanly (exit 1, an error message, no panic);
# nothing corrupt may be stored locally (`cache verify` on every store used) or remotely (every
# blob file in the registry's storage re-hashed, every tag pulled back and verified, exported
# caches imported on empty stores). Peers start on loopback ports; prints a table.
#
#   scripts/faultsoak.sh                     # 220 runs, 20 imports checked
#   SOAK_FAULT_RUNS=50 SOAK_IMPORTS=5 scripts/faultsoak.sh
#   SOAK_SEED=123 scripts/faultsoak.sh       # repeat a run's choices
#
# The summary also goes to $SOAK_REPORT (default target/faultsoak-report.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_FAULT_RUNS="${SOAK_FAULT_RUNS:-220}" SOAK_IMPORTS="${SOAK_IMPORTS:-20}"
target="${CARGO_TARGET_DIR:-target}"
export SOAK_REPORT="${SOAK_REPORT:-$target/faultsoak-report.txt}"
mkdir -p "$(dirname "$SOAK_REPORT")"
: > "$SOAK_REPORT"
start=$(date +%s)
status=0
cargo test -p ocibuild --test soak -- --ignored --exact fault_soak_full --nocapture --test-threads 1 || status=1
echo "== fault soak: $(( $(date +%s) - start )) s, exit $status"
cat "$SOAK_REPORT"
exit $status
