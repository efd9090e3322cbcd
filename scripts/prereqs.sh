#!/usr/bin/env bash
# Installs what building and testing Coffer needs on a fresh Debian/Ubuntu machine with the
# Rust toolchain, and does nothing when it is all there already. Shared by the README's two
# commands:
#   scripts/prereqs.sh build   what `cargo build` needs: Debian's RocksDB (linked instead of
#                              compiling its C++, ~20 minutes saved per cold build) and libclang
#                              (bindgen)
#   scripts/prereqs.sh test    also what the tests need: S3 clients (rclone, s3cmd, aws CLI,
#                              boto3), iproute2 and util-linux (the Kubernetes harness), lua5.4
#                              (Argo CD health checks), headless Chromium (browser CORS test),
#                              CA certificates (container images)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-build}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

command -v cargo >/dev/null 2>&1 || {
  echo "cargo not found: install Rust first (https://rustup.rs), then run this again" >&2
  exit 1
}

packages=(librocksdb-dev libclang-dev)
case "$mode" in
  build) ;;
  test) packages+=(rclone s3cmd iproute2 util-linux lua5.4 chromium-headless-shell ca-certificates) ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || {
    echo "missing ${missing[*]}, and this is not a Debian-like system: install them by hand" >&2
    exit 1
  }
  echo "installing ${missing[*]}" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "$mode" = test ]; then
  e2e/compat/install.sh
fi
