#!/usr/bin/env bash
# Runs every Coffer test: formatting, lints, unit and integration tests, and the client
# compatibility tests (aws CLI, boto3, rclone, s3cmd). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# System packages: RocksDB and libclang to build (we link Debian's RocksDB instead of
# compiling its C++), rclone and s3cmd for the compatibility tests.
missing=()
for pkg in librocksdb-dev libclang-dev rclone s3cmd; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ -x e2e/compat/install.sh ]; then
  e2e/compat/install.sh
fi

cargo fmt --all --check
cargo clippy --release --workspace --all-targets -- -D warnings
cargo test --release --workspace --no-fail-fast

# Operator chart and manifests: Argo CD health check under Lua, helm lint/template (helm is
# built once from its Go module into ~/.cache/coffer-e2e/go), kustomize renders.
charts/test.sh
