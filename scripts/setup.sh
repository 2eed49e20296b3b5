#!/usr/bin/env bash
# Set up a fresh Debian 12 (or 13) machine for ocibuild, build it, and run the main job:
# assemble a hello image from busybox onto scratch, check it with skopeo/umoci/oci-image-tool,
# and run it with runc.
#
#   sudo ./scripts/setup.sh            # everything
#   ./scripts/setup.sh --packages-only # only the system packages (used by scripts/test.sh)
#
# Needs root for apt-get (skipped when every package is already installed) and for runc.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(
  build-essential pkg-config git ca-certificates jq      # build
  skopeo umoci oci-image-tool runc podman                # peers that check and run what we write
  buildah                                                # build-bench peer (Dockerfile builds)
  pigz zstd busybox-static uidmap                        # benchmark peers, test payloads
  docker-registry apache2-utils openssl curl             # registry peer, bcrypt htpasswd, test CAs, readiness probes
  util-linux dpkg iproute2                               # setpriv/unshare/nsenter (sandbox tests), dpkg-deb (.deb tests), ip (serving apps under runc)
  nodejs                                                 # Azurite (npm, installed by the cache tests); this machine's nodejs bundles npm (Debian's separate npm would conflict with it)
)

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && { log "system packages present"; return 0; }
  [ "$(id -u)" -eq 0 ] || die "need root to install: ${missing[*]} (run with sudo)"
  log "apt-get install ${missing[*]}"
  local i
  for i in 1 2 3; do
    # Another apt may hold the lock, and Debian's docker-clean hook can delete .debs under a
    # concurrent run: wait for the lock and retry.
    if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq &&
       DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
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
  [ "$(id -u)" -eq 0 ] || die "need root to install npm (for Azurite in the cache tests): run with sudo"
  log "apt-get install npm"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends npm >/tmp/ocibuild-apt.log 2>&1 \
    || die "apt-get install npm failed (see /tmp/ocibuild-apt.log)"
fi
[ "${1:-}" = "--packages-only" ] && exit 0
check_rust
log "cargo build --release"
cargo build --release --locked -p ocibuild
BIN="$PWD/target/release/ocibuild"

# --- the main job: a hello image, checked by independent tools, run with runc ---------------
W="$(mktemp -d "${TMPDIR:-/tmp}/ocibuild-hello.XXXXXX")"
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/rootfs/bin"
cp /bin/busybox "$W/rootfs/bin/busybox"
ln -s busybox "$W/rootfs/bin/sh"
ln -s busybox "$W/rootfs/bin/echo"
log "ocibuild assemble (busybox onto scratch)"
"$BIN" --root "$W/store" assemble \
  --layer "$W/rootfs:/" \
  --entrypoint '["/bin/busybox","echo"]' --cmd 'hello from ocibuild' \
  --user 65532:65532 --label org.opencontainers.image.title=hello \
  -t hello:v1 --output "oci:$W/layout:v1" --output "oci-archive:$W/hello.tar" \
  --output "docker-archive:$W/hello-docker.tar"
"$BIN" --root "$W/store" validate "oci:$W/layout:v1"
"$BIN" --root "$W/store" inspect "oci:$W/layout:v1"
log "skopeo inspect / oci-image-tool validate / umoci unpack"
skopeo inspect "oci:$W/layout:v1" | jq -c '{Digest, Architecture, Os, Layers}'
oci-image-tool validate --type image --ref name=v1 "$W/layout"
umoci unpack --image "$W/layout:v1" "$W/bundle" >/dev/null
jq '.process.terminal = false' "$W/bundle/config.json" >"$W/bundle/config.tmp" && mv "$W/bundle/config.tmp" "$W/bundle/config.json"
log "runc run"
if [ "$(id -u)" -eq 0 ]; then
  out="$(runc --root "$W/runc" run --bundle "$W/bundle" "ocibuild-hello-$$" </dev/null)"
  echo "container said: $out"
  [ "$out" = "hello from ocibuild" ] || die "unexpected output from the container: $out"
else
  log "not root: skipping runc (run as root to see the container run)"
fi
log "done: $BIN"
