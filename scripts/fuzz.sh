#!/usr/bin/env bash
# Long hostile-input campaign (issue 22): the property tests CI runs with 10,000 cases each,
# here with OCIBUILD_PROPTEST_CASES (default 1,000,000) per target, in release mode.
#
#   scripts/fuzz.sh                 # every target, 1,000,000 cases each
#   CASES=50000 scripts/fuzz.sh tar # one target
#   PROFILE=dev CASES=1000 scripts/fuzz.sh json   # a quick check without a release build
#
# Targets: tar (hostile tar and gzip/zstd layers, bombs), json (manifests, indexes, configs),
# auth (WWW-Authenticate headers), deb (.deb members and Packages indexes), layout (OCI layout
# directories and oci-archive files), dockerfile (random valid and invalid Dockerfiles), cache (step
# records from a remote cache: wrong digests, sizes, media types, diff ids, shapes). Each
# prints its counts (cases, past the first parse stage, accepted). A failing case is shrunk and
# kept by proptest as a regression file next to its test (crates/*/tests/*.proptest-regressions,
# replayed first on every later run, CI included): commit it with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
CASES="${CASES:-1000000}"
PROFILE="${PROFILE:-release}"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(tar json auth deb layout dockerfile cache)
status=0
for t in "${targets[@]}"; do
    case "$t" in
        tar) args=(-p ocibuild-oci --test hostile_layers) ;;
        json) args=(-p ocibuild-oci --test hostile_json) ;;
        auth) args=(-p ocibuild-registry --test hostile_auth) ;;
        deb) args=(-p ocibuild-debian --test hostile_debian) ;;
        layout) args=(-p ocibuild-oci --test hostile_layout) ;;
        dockerfile) args=(-p ocibuild-dockerfile --test hostile_dockerfiles) ;;
        cache) args=(-p ocibuild-engine --test hostile_cache_records) ;;
        *) echo "fuzz.sh: unknown target $t (tar, json, auth, deb, layout, dockerfile, cache)" >&2; exit 2 ;;
    esac
    echo "== $t: $CASES cases per test"
    start=$(date +%s)
    if ! OCIBUILD_PROPTEST_CASES="$CASES" cargo test --profile "$PROFILE" "${args[@]}" -- --nocapture --test-threads 1 2>&1 \
        | grep -E '^hostile |cases|panicked|minimal failing input|test result'; then
        status=1
    fi
    echo "== $t: $(( $(date +%s) - start )) s"
done
ls crates/*/tests/*.proptest-regressions 2>/dev/null | sed 's/^/kept failing inputs: /' || true
exit $status
