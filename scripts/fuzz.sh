#!/usr/bin/env bash
# Long hostile-input campaign (issue 22): the property tests CI runs with 10,000 cases each,
# here with OCIBUILD_PROPTEST_CASES (default 1,000,000) per target, in release mode.
#
#   scripts/fuzz.sh                 # every target, 1,000,000 cases each
#   CASES=50000 scripts/fuzz.sh tar # one target
#   PROFILE=dev CASES=1000 scripts/fuzz.sh json   # a quick check without a release build
#   CASES_layout=200000 scripts/fuzz.sh           # CASES_<target> sets one target's count
#   CASES_auth=0 scripts/fuzz.sh auth deb cache   # 0 skips a target (built all the same)
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
# a scratch directory on tmpfs when there is one: the layout and tar targets write a few files
# per case, and on a disk that is most of their time (about 7x slower on this project's CI VM)
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR=/dev/shm
fi
# Build every target first, in one cargo run (one feature set for all of them), then run the
# binaries directly: cargo's build lock is free while the cases run.
declare -A pkgs tests
args=()
for t in "${targets[@]}"; do
    case "$t" in
        tar) pkg=ocibuild-oci test=hostile_layers ;;
        json) pkg=ocibuild-oci test=hostile_json ;;
        auth) pkg=ocibuild-registry test=hostile_auth ;;
        deb) pkg=ocibuild-debian test=hostile_debian ;;
        layout) pkg=ocibuild-oci test=hostile_layout ;;
        dockerfile) pkg=ocibuild-dockerfile test=hostile_dockerfiles ;;
        cache) pkg=ocibuild-engine test=hostile_cache_records ;;
        *) echo "fuzz.sh: unknown target $t (tar, json, auth, deb, layout, dockerfile, cache)" >&2; exit 2 ;;
    esac
    pkgs[$t]=$pkg
    tests[$t]=$test
    args+=(-p "$pkg" --test "$test")
done
built=$(cargo test --profile "$PROFILE" "${args[@]}" --no-run 2>&1) || {
    echo "$built" >&2
    echo "fuzz.sh: the build failed (cargo test --profile $PROFILE ${args[*]} --no-run)" >&2
    exit 1
}
declare -A bins
for t in "${targets[@]}"; do
    bin=$(echo "$built" | sed -n "s|^ *Executable tests/${tests[$t]}\.rs (\(.*\))\$|\1|p" | tail -1)
    if [ -z "$bin" ] || [ ! -x "$bin" ]; then
        echo "fuzz.sh: no test binary for ${tests[$t]} in cargo's output" >&2
        exit 1
    fi
    bins[$t]="${pkgs[$t]} $(realpath "$bin")"
done
for t in "${targets[@]}"; do
    read -r pkg bin <<<"${bins[$t]}"
    n_var="CASES_$t"
    n="${!n_var:-$CASES}"
    if [ "$n" = 0 ]; then
        echo "== $t: skipped (CASES_$t=0)"
        continue
    fi
    echo "== $t: $n cases per test ($(date -u +%FT%TZ), scratch in ${TMPDIR:-/tmp})"
    start=$(date +%s)
    if ! (cd "crates/$pkg" && OCIBUILD_PROPTEST_CASES="$n" "$bin" --nocapture --test-threads 1 2>&1) \
        | grep -E '^hostile |cases|panicked|minimal failing input|test result'; then
        status=1
    fi
    echo "== $t: $(( $(date +%s) - start )) s"
done
ls crates/*/tests/*.proptest-regressions 2>/dev/null | sed 's/^/kept failing inputs: /' || true
exit $status
