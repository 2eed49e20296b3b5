#!/usr/bin/env bash
# Set up a fresh Debian 12 (or 13) machine for ocibuild, build it, and run the main job: build the
# Go HTTP server in testdata/apps/go-http zero-config (from source, no Dockerfile), check the image
# with skopeo, umoci and oci-image-tool, run it with runc and get an HTTP answer from it, and print
# the image size and the time taken.
#
#   ./scripts/setup.sh                 # as root, or as a user with sudo: everything
#   ./scripts/setup.sh --packages-only # only the system packages (used by scripts/test.sh)
#
# Root is needed for apt-get (skipped when every package is already installed) and for runc; the
# script uses sudo for those only when it is not root and sudo is installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(
  build-essential pkg-config git ca-certificates jq      # build
  skopeo umoci oci-image-tool runc podman                # peers that check and run what we write
  buildah                                                # build-bench peer (Dockerfile builds)
  pigz zstd busybox-static uidmap                        # benchmark peers, test payloads
  docker-registry apache2-utils openssl curl             # registry peer, bcrypt htpasswd, test CAs, readiness probes
  util-linux dpkg iproute2                               # setpriv/unshare/nsenter (sandbox tests), dpkg-deb (.deb tests), ip (serving apps under runc)
  libdpkg-perl                                           # Dpkg::Version: the bulk oracle of the Debian version tests (oracle_dpkg)
  maven default-jre-headless                             # Maven's own ComparableVersion: the oracle of scan's Maven ordering test
  python3 python3-venv                                   # PyPI oracles in a venv (cyclonedx-python-lib, spdx-tools, packaging, cvss, jsonschema)
  qemu-user-static                                       # runs the arm64 binaries of multi-platform builds (qemu-aarch64-static), and registers binfmt_misc where the host allows it
  nodejs                                                 # Azurite (npm, installed by the cache tests); this machine's nodejs bundles npm (Debian's separate npm would conflict with it)
)

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# `as_root CMD…`: CMD as root — directly when we are root, through sudo when it is installed.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -- "$@"
  else
    die "need root for: $* — run this script as root, or install sudo"
  fi
}

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && { log "system packages present"; return 0; }
  log "apt-get install ${missing[*]}"
  local i
  for i in 1 2 3; do
    # Another apt may hold the lock, and Debian's docker-clean hook can delete .debs under a
    # concurrent run: wait for the lock and retry.
    if as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq &&
       as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
         --no-install-recommends "${missing[@]}" >/tmp/ocibuild-apt.log 2>&1; then
      return 0
    fi
    tail -5 /tmp/ocibuild-apt.log >&2 || true
    sleep $((i * 5))
  done
  die "apt-get install failed (see /tmp/ocibuild-apt.log)"
}

check_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v cargo >/dev/null 2>&1 || die "no Rust toolchain: install Rust >= 1.89 with rustup (https://rustup.rs), then run this again"
  local v; v="$(rustc --version | awk '{print $2}')"
  local minor; minor="$(echo "$v" | cut -d. -f2)"
  [ "$minor" -ge 89 ] || die "rustc $v is too old: ocibuild needs >= 1.89 (edition 2024); run \`rustup update stable\`"
  log "rustc $v"
}

install_packages
# Debian's own nodejs comes without npm (a separate package); a nodejs that bundles npm
# conflicts with Debian's npm, so install it only when npm is missing.
if ! command -v npm >/dev/null 2>&1; then
  log "apt-get install npm"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends npm >/tmp/ocibuild-apt.log 2>&1 \
    || die "apt-get install npm failed (see /tmp/ocibuild-apt.log)"
fi
[ "${1:-}" = "--packages-only" ] && exit 0
check_rust
log "cargo build --release"
cargo build --release --locked -p ocibuild
BIN="$PWD/target/release/ocibuild"

# --- the main job: a Go HTTP server built from source, checked by independent tools, run with runc --
APP=testdata/apps/go-http
W="$(mktemp -d "${TMPDIR:-/tmp}/ocibuild-main.XXXXXX")"
CID="ocibuild-go-http-$$"
have_root() { [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null 2>&1; }
cleanup() {
  if have_root; then
    as_root runc --root "$W/runc" delete --force "$CID" >/dev/null 2>&1 || true
    as_root rm -rf "$W"
  else
    rm -rf "$W"
  fi
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

t0="$(now)"
log "ocibuild build $APP (zero-config: detected from go.mod, no Dockerfile; the first run assembles the Go toolchain from Debian packages)"
digest="$("$BIN" build "$APP" --output "oci:$W/layout:go-http" --metadata-file "$W/meta.json")"
t_built="$(now)"
size="$(jq -r '."ocibuild.size"' "$W/meta.json")"
"$BIN" validate "oci:$W/layout:go-http"

log "skopeo inspect / oci-image-tool validate / umoci unpack"
skopeo inspect "oci:$W/layout:go-http" | jq -c "{Digest, Architecture, Os, Layers}"
oci-image-tool validate --type image --ref name=go-http "$W/layout"
if ! have_root; then
  umoci unpack --rootless --image "$W/layout:go-http" "$W/bundle" >/dev/null
  log "not root and no sudo: the image unpacks, but running it with runc needs root (run this script as root to see it answer)"
  log "image $digest: $size bytes compressed, built in $(secs "$t0" "$t_built") s"
  exit 0
fi
as_root umoci unpack --image "$W/layout:go-http" "$W/bundle" >/dev/null
as_root sh -c 'jq ".process.terminal = false | .process.env += [\"PORT=8080\"]" "$1/config.json" >"$1/config.tmp" && mv "$1/config.tmp" "$1/config.json"' sh "$W/bundle"

log "runc: start the server in its own network namespace and GET / from inside it"
as_root runc --root "$W/runc" create --bundle "$W/bundle" "$CID" </dev/null >"$W/server.log" 2>&1 ||
  die "runc create failed: $(cat "$W/server.log")"
pid="$(as_root runc --root "$W/runc" state "$CID" | jq -r .pid)"
as_root nsenter -t "$pid" -n ip link set lo up
as_root runc --root "$W/runc" start "$CID"
answer="$(as_root nsenter -t "$pid" -n curl -sS --fail --retry 30 --retry-connrefused --retry-delay 1 \
  --max-time 60 http://127.0.0.1:8080/)" || die "the server did not answer; its output: $(cat "$W/server.log")"
t_answered="$(now)"
as_root runc --root "$W/runc" kill "$CID" KILL >/dev/null 2>&1 || true
echo "container answered: $answer"
case "$answer" in
  "hello from go-http as uid 65532") ;;
  *) die "unexpected answer from the container: $answer" ;;
esac
human="$(numfmt --to=si --suffix=B --format=%.1f "$size" 2>/dev/null || echo "$size bytes")"
log "image $digest: $human compressed ($size bytes), built in $(secs "$t0" "$t_built") s;" \
  "build, checks, run and HTTP answer in $(secs "$t0" "$t_answered") s"
log "done: $BIN"
