#!/usr/bin/env bash
# Eject every testdata app (`ocibuild build DIR --dry-run=dockerfile`), build the Dockerfile, and
# compare with the zero-config image: same root filesystem for all, same digest for the apps the
# test lists. The CI suite runs a subset of each family; this runs them all (about 20 minutes on
# 2 cores). Run as root after ./scripts/setup.sh --packages-only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OCIBUILD_EJECT_ALL=1 exec cargo test --locked -p ocibuild --test eject -- --test-threads 1 ejected_ "$@"
