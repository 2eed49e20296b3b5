#!/usr/bin/env bash
# Run the whole test suite: formatting, lints, the compressor pin, unit, integration and
# end-to-end tests against real peer tools (skopeo, umoci, oci-image-tool, runc, podman).
# Installs missing system packages first (needs root then). `.ci/run` runs exactly this, and
# prints at the end how long each test binary took.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

./scripts/setup.sh --packages-only

# A from-scratch build gains nothing from incremental compilation, and its files doubled the
# target dir's size. Set CARGO_INCREMENTAL=1 to keep them between edits.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir"
echo "== disk: $(df -h --output=avail "$target_dir" | tail -1 | tr -d ' ') free for $target_dir at the start"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== flate2 backend pin (layer digests depend on it)"
feats="$(cargo tree -e features -i flate2 --edges normal 2>/dev/null | grep -o 'flate2 feature "[a-z_-]*"' | sort -u | tr '\n' ' ')"
echo "flate2 features in the graph: $feats"
for bad in '"zlib"' '"zlib-ng"' '"zlib-ng-compat"' '"miniz_oxide"' '"rust_backend"' '"cloudflare_zlib"'; do
  if grep -q "feature $bad" <<<"$feats"; then
    echo "ERROR: a dependency switched flate2's backend ($bad): layer digests would change. See crates.md." >&2
    exit 1
  fi
done
grep -q 'feature "zlib-rs"' <<<"$feats" || { echo "ERROR: flate2 is not on the zlib-rs backend" >&2; exit 1; }

echo "== dev-dependency feature parity (the tested binary is the shipped one)"
# `cargo test --workspace` unifies dev-dependencies' features into the binary's dependencies; a
# crate whose features differ from `cargo build -p ocibuild`'s is built twice and tested with
# features it does not ship with. Turn such a feature on in the binary's graph (see the sigstore
# parity entries in Cargo.toml).
features_of() {
  cargo tree --locked -f '{p} {f}' --prefix none "$@" 2>/dev/null \
    | sed -e 's/ (\*)//' -e 's/ (proc-macro)//' -e 's/ (\/[^)]*)//' | sort -u
}
# one line per (package, feature set); a package built for the host and the target can have two
flips="$(awk 'NR == FNR { bin[$1 " " $2] = 1; print "shipped: " $0; next }
    ($1 " " $2) in bin { print "tested: " $0 }' \
  <(features_of -p ocibuild -e normal,build) <(features_of --workspace -e normal,build,dev) \
  | sort -k2 | uniq -u -f1 | sed 's/^/  /')"
if [ -n "$flips" ]; then
  echo "ERROR: dev-dependencies change features of the binary's dependencies:" >&2
  echo "$flips" >&2
  exit 1
fi

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Build every test binary first (timed), then run them; cargo prints `Running <binary>` and a
# `test result: … finished in Xs` line per binary, gathered into one table at the end (slowest
# first), with the binaries that stopped without a result (a crash) marked.
echo "== cargo test (build)"
t0=$(date +%s)
cargo test --workspace --locked --no-run
echo "test binaries built in $(( $(date +%s) - t0 )) s"

echo "== cargo test"
log="$(mktemp "${TMPDIR:-/tmp}/ocibuild-test.XXXXXX")"
trap 'rm -f "$log"' EXIT
t0=$(date +%s)
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
echo "== disk: $(df -h --output=avail "$target_dir" | tail -1 | tr -d ' ') free for $target_dir at the end; $(du -sh "$target_dir" 2>/dev/null | cut -f1) used by it"
echo "== time per test binary (run time; whole run $(( $(date +%s) - t0 )) s)"
awk '
  function flush() { if (name != "" && !done) printf "%9s  %-7s %s\n", "-", "NO RESULT", name }
  /^ *Running / {
    flush(); done = 0
    bin = $0; sub(/.*deps\//, "", bin); sub(/-[0-9a-f]+\)$/, "", bin)
    src = $0; sub(/^ *Running /, "", src); sub(/ \(.*/, "", src)
    name = bin "  " src
  }
  /^ *Doc-tests / { flush(); name = "doc-tests " $2; done = 0 }
  /^test result: / {
    status = ($3 == "ok.") ? "ok" : "FAILED"
    t = $0; sub(/.*finished in /, "", t); sub(/s$/, "", t)
    printf "%8.2fs  %-7s %s\n", t, status, name; done = 1
  }
  END { flush() }
' "$log" | sort -rn
exit "$rc"
