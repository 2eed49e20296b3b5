#!/usr/bin/env bash
# buildah as the oracle, long runs (issue 22): the differential tests of
# crates/ocibuild/tests/buildah_oracle.rs with more cases and fresh seeds than CI's.
#
#   scripts/oracle.sh                       # 400 .dockerignore cases, 300 COPY patterns, 100 Dockerfiles, all testdata
#   IGNORE_CASES=1000 COPY_CASES=500 SEED=7 scripts/oracle.sh
#
# Needs root and buildah, like the tests. Each test prints its counts (cases, differences,
# known differences between buildah and BuildKit); a differing case is printed with its seed
# and case number, which reproduce it (OCIBUILD_ORACLE_SEED, and enough cases).
set -euo pipefail
cd "$(dirname "$0")/.."
SEED="${SEED:-$(date +%s)}"
export OCIBUILD_ORACLE_SEED="$SEED"
export OCIBUILD_ORACLE_CASES="${IGNORE_CASES:-400}"
export OCIBUILD_ORACLE_COPY_CASES="${COPY_CASES:-300}"
export OCIBUILD_ORACLE_DF_CASES="${DF_CASES:-100}"
export OCIBUILD_ORACLE_TESTDATA=all
echo "== seed $SEED: $OCIBUILD_ORACLE_CASES .dockerignore cases, $OCIBUILD_ORACLE_COPY_CASES COPY patterns, $OCIBUILD_ORACLE_DF_CASES Dockerfiles, every testdata Dockerfile"
start=$(date +%s)
status=0
# the whole output: a differing case prints its seed, case number, input and differences
cargo test -p ocibuild --test buildah_oracle -- --nocapture --test-threads 1 2>&1 \
    | grep -vE '^ +[0-9]+: |^ +at |^warning|^ +Compiling' || status=1
echo "== $(( $(date +%s) - start )) s"
exit $status
