#!/usr/bin/env bash
# Kill -9 soak (issue 22): builds (zero-config Go and Dockerfile, with --cache-to to a registry
# and to Azure Blob, and pushes) and `cache prune` killed with SIGKILL at named failpoints
# (OCIBUILD_FAILPOINT, test-only: see crates/ocibuild-oci/src/failpoint.rs) spread over the
# phases layer-write, blob-commit, record-commit, blob-upload, cache-export, base-assembly and
# prune, plus kills at random times from outside. After every kill `cache verify` must find
# nothing broken and the next build must give the digest of an uninterrupted build. Then rounds
# of four concurrent builds on one store with `cache prune` running.
#
# The peers (docker-registry, Azurite from npm) are started by the test on loopback ports
# (crates/ocibuild-testkit); nothing outside the repository is used. Prints a table per phase.
#
#   scripts/soak.sh                          # 42 failpoint kills + 14 random kills, 3 rounds
#   SOAK_KILLS=14 SOAK_RANDOM_KILLS=4 SOAK_ROUNDS=1 scripts/soak.sh
#   SOAK_SEED=123 scripts/soak.sh            # repeat a run's choices
#   SOAK_ZERO_CONFIG=0 scripts/soak.sh       # Dockerfile builds only (no Go toolchain root)
#
# The summary also goes to $SOAK_REPORT (default target/soak-report.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_KILLS="${SOAK_KILLS:-42}" SOAK_RANDOM_KILLS="${SOAK_RANDOM_KILLS:-14}" SOAK_ROUNDS="${SOAK_ROUNDS:-3}"
target="${CARGO_TARGET_DIR:-target}"
export SOAK_REPORT="${SOAK_REPORT:-$target/soak-report.txt}"
mkdir -p "$(dirname "$SOAK_REPORT")"
: > "$SOAK_REPORT"
start=$(date +%s)
status=0
cargo test -p ocibuild --test soak -- --ignored --exact kill_soak_full --nocapture --test-threads 1 || status=1
echo "== kill soak: $(( $(date +%s) - start )) s, exit $status"
cat "$SOAK_REPORT"
exit $status
