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

# Clippy lints the workspace while the test binaries are built: clippy-driver is the workspace
# crates' compiler (what `cargo clippy` does, with code generation kept), so the dependencies are
# compiled once instead of once checked for clippy and once built for the tests (a from-scratch
# clippy pass took 567 s of a CI run). A lint fails the build, as `cargo clippy -- -D warnings`
# does. Every cargo command below runs with the same wrapper, so none rebuilds the workspace.
echo "== cargo clippy + cargo test (build)"
if [ -x "$HOME/.cargo/bin/rustup" ] || command -v rustup >/dev/null 2>&1; then
  clippy_driver="$(rustup which clippy-driver 2>/dev/null || true)"
fi
[ -n "${clippy_driver:-}" ] || clippy_driver="$(command -v clippy-driver || true)"
[ -n "$clippy_driver" ] && [ -x "$clippy_driver" ] ||
  { echo "ERROR: no clippy-driver: install clippy (rustup component add clippy)" >&2; exit 1; }
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
t0=$(date +%s)
# cargo's default selection (libraries, binaries with tests, integration tests, examples), not
# --all-targets: that one also builds a test harness for every binary marked `test = false`
# (the benchmarks, the sandbox's exec helper: no tests), a second compile of each. Those binaries
# are built once, plainly, for their lints.
cargo test --workspace --locked --no-run
cargo build --workspace --bins --locked
echo "test binaries built and linted in $(( $(date +%s) - t0 )) s"

# name, source (relative to the workspace), package dir and executable of every test binary
bins="$(cargo test --workspace --locked --no-run --message-format=json 2>/dev/null | jq -r --arg root "$PWD/" '
  select(.reason == "compiler-artifact" and .profile.test and .executable != null)
  | (.manifest_path | sub("/Cargo.toml$"; "")) as $dir
  | [.target.name, (.target.src_path | ltrimstr($root)), $dir, .executable] | @tsv')"
[ -n "$bins" ] || { echo "ERROR: cargo listed no test binaries" >&2; exit 1; }

times_file="$target_dir/test-times.tsv"
# the slow binaries of the last recorded CI run, for the first run on a machine
default_order="ocibuild/tests/dockerfile ocibuild/tests/cache ocibuild/tests/node_apps
  ocibuild/tests/base ocibuild/tests/build ocibuild/tests/merged_usr ocibuild/tests/apps
  ocibuild/tests/multiplatform ocibuild/tests/python_apps ocibuild-oci/tests/hostile_layout
  ocibuild/tests/buildah_oracle ocibuild/tests/policy ocibuild/tests/soak ocibuild/tests/sbom
  ocibuild/tests/eject ocibuild-engine/tests/hostile_cache_records"
order_of() { # name source -> sort weight (higher first)
  local w
  if [ -f "$times_file" ] && w="$(awk -F'\t' -v n="$2" '$1 == n { print int($2 * 100); exit }' "$times_file")" && [ -n "$w" ]; then
    echo "$w"; return
  fi
  w=0; local i=1000 d
  for d in $default_order; do [ "crates/$d.rs" = "$2" ] && { echo $((100000 + i)); return; }; i=$((i - 1)); done
  echo "$w"
}
ordered="$(while IFS=$'\t' read -r name src dir exe; do
  printf '%s\t%s\t%s\t%s\t%s\n' "$(order_of "$name" "$src")" "$name" "$src" "$dir" "$exe"
done <<<"$bins" | awk -F'\t' -v only="${OCIBUILD_TEST_ONLY:-}" 'only == "" || $2 ~ only' | sort -t$'\t' -k1,1nr | cut -f2-)
doc-tests	(doc-tests)	.	cargo"

# Each test's time (libtest's --report-time, unstable: allowed here by RUSTC_BOOTSTRAP for the test
# binaries only, never for compiling); the slowest tests are listed at the end. Left out when this
# toolchain's libtest refuses the flag. OCIBUILD_TEST_REPORT_TIME=0 turns it off.
report_time=()
first_exe="$(head -1 <<<"$ordered" | cut -f4)"
if [ "${OCIBUILD_TEST_REPORT_TIME:-1}" != 0 ] && [ "$first_exe" != cargo ] &&
   RUSTC_BOOTSTRAP=1 "$first_exe" -Z unstable-options --report-time --list >/dev/null 2>&1; then
  report_time=(-Z unstable-options --report-time)
fi

echo "== cargo test ($(wc -l <<<"$bins") binaries, ${OCIBUILD_TEST_LANES:-2} at a time)"
lanes="${OCIBUILD_TEST_LANES:-2}"
logdir="$(mktemp -d "${TMPDIR:-/tmp}/ocibuild-test.XXXXXX")"
trap 'rm -rf "$logdir"' EXIT
t0=$(date +%s)
cpu0="$(awk '{ print $14 + $15 + $16 + $17 }' /proc/$$/stat)"
rc=0
declare -A started=()
running=0 i=0
# print a finished binary's output and record its result line: "secs<TAB>status<TAB>name<TAB>src"
finish() {
  local n="$1" name src exe code end beg cpu
  IFS=$'\t' read -r name src exe < "$logdir/$n.what"
  read -r code end beg cpu < "$logdir/$n.rc"
  printf '     Running %s (%s)\n' "$src" "$exe"
  cat "$logdir/$n.log"
  local status=ok
  if [ "$code" != 0 ]; then
    status=FAILED; rc=1
    grep -q '^test result: ' "$logdir/$n.log" || status="NO RESULT"
  fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$(awk -v a="$beg" -v b="$end" 'BEGIN { printf "%.2f", b - a }')" "$status" "$name" "$src" "${cpu:-?}" >> "$logdir/table"
  rm -f "$logdir/$n.rc"
  running=$((running - 1))
}
reap() { # wait for one binary to end, then print every finished one
  local st=0 f found=0
  wait -n || st=$?
  for f in "$logdir"/*.rc; do [ -e "$f" ] && { finish "$(basename "$f" .rc)"; found=1; }; done
  if [ "$st" -eq 127 ] && [ "$found" -eq 0 ]; then
    echo "ERROR: $running test binaries ended without a result (their runner was killed)" >&2
    exit 1
  fi
}
while IFS=$'\t' read -r name src dir exe; do
  while [ "$running" -ge "$lanes" ]; do reap; done
  i=$((i + 1))
  printf '%s\t%s\t%s\n' "$name" "$src" "$exe" > "$logdir/$i.what"
  (
    beg="$(date +%s.%N)"
    set +e
    if [ "$name" = doc-tests ]; then
      cargo test --workspace --locked --doc
    else
      # The property tests of hostile inputs write a few small files per case (10,000 cases):
      # on tmpfs when there is one (on ext4 that churn is most of their time, as scripts/fuzz.sh
      # notes).
      case "$name" in
        hostile_*) [ -d /dev/shm ] && [ -w /dev/shm ] && export TMPDIR=/dev/shm ;;
      esac
      (cd "$dir" && if [ "${#report_time[@]}" -gt 0 ]; then RUSTC_BOOTSTRAP=1 exec "$exe" "${report_time[@]}"; else exec "$exe"; fi)
    fi > "$logdir/$i.log" 2>&1
    code=$?
    # the CPU time of the binary and of every process it waited for (ocibuild, buildah, umoci…)
    me=$BASHPID
    cpu="$(awk -v t="$(getconf CLK_TCK)" '{ printf "%.0f", ($16 + $17) / t }' "/proc/$me/stat")"
    echo "$code $(date +%s.%N) $beg $cpu" > "$logdir/$i.rc.tmp" && mv "$logdir/$i.rc.tmp" "$logdir/$i.rc"
  ) &
  running=$((running + 1))
done <<<"$ordered"
while [ "$running" -gt 0 ]; do reap; done
wall=$(( $(date +%s) - t0 ))
cpu1="$(awk '{ print $14 + $15 + $16 + $17 }' /proc/$$/stat)"
ticks="$(getconf CLK_TCK)"
cpu=$(( (cpu1 - cpu0) / ticks ))
echo "== disk: $(df -h --output=avail "$target_dir" | tail -1 | tr -d ' ') free for $target_dir at the end; $(du -sh "$target_dir" 2>/dev/null | cut -f1) used by it"
echo "== time per test binary (wall time, then CPU time of the binary and the processes it ran; whole run ${wall} s, ${cpu} s of CPU on $(nproc) cores)"
sort -t$'\t' -k1,1nr "$logdir/table" | awk -F'\t' '{ printf "%8.2fs %6ss cpu  %-9s %s  %s\n", $1, $5, $2, $3, $4 }'
if [ "${#report_time[@]}" -gt 0 ]; then
  echo "== slowest tests (wall time, --report-time)"
  for f in "$logdir"/*.log; do
    n="$(basename "$f" .log)"
    bin="$(cut -f1 "$logdir/$n.what" 2>/dev/null)"
    sed -n 's/^test \(.*\) \.\.\. \([a-zA-Z]*\) <\([0-9.]*\)s>$/\3\t\2\t\1/p' "$f" | sed "s|\t\([^\t]*\)\$|\t$bin::\1|"
  done | sort -t$'\t' -k1,1nr | awk -F'\t' 'NR <= 40 { printf "%8.2fs  %-6s %s\n", $1, $2, $3 }'
fi
# the order of the next run on this machine: longest first
if [ "$rc" -eq 0 ] || [ ! -f "$times_file" ]; then
  awk -F'\t' '{ print $4 "\t" $1 }' "$logdir/table" > "$times_file.tmp" 2>/dev/null \
    && mv "$times_file.tmp" "$times_file"
fi
exit "$rc"
