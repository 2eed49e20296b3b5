#!/usr/bin/env bash
# Every real-world Dockerfile case against buildah, the framework builds included (CI runs the
# quick ones): testdata/dockerfiles/realworld. Takes 5–10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
./scripts/setup.sh --packages-only
OCIBUILD_REALWORLD=all cargo test --locked -p ocibuild --test dockerfile \
  realworld_dockerfiles_build_like_buildah_and_run -- --nocapture
