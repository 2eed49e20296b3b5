#!/usr/bin/env bash
# Run the whole test suite: formatting, lints, the compressor pin, unit, integration and
# end-to-end tests against real peer tools (skopeo, umoci, oci-image-tool, runc, podman).
# Installs missing system packages first (needs root then). `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

./scripts/setup.sh --packages-only

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

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked --no-fail-fast
