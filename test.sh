#!/usr/bin/env bash
# Runs every Coffer test: formatting, lints, unit and integration tests, and the client
# compatibility tests (aws CLI, boto3, rclone, s3cmd), then each fuzz target for a bounded
# time when a nightly toolchain is present. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")"

# What the build and the tests need (apt and pip packages; nothing when present already).
scripts/prereqs.sh test

cargo fmt --all --check
cargo clippy --release --workspace --all-targets -- -D warnings
# The Kubernetes end-to-end test (e2e/tests/k8s.rs) runs the operator's binary, a control
# plane built from Go modules and helm (for the chart): build them first, so their time shows
# here and not inside a test (the Go builds are cached in ~/.cache/coffer-e2e/go; cold they
# take many minutes).
# (Whole workspace, all targets: the same feature set `cargo test --workspace` resolves, so the
# test run reuses these artifacts instead of rebuilding dependencies with other features.)
cargo build --release --workspace --all-targets
"${CARGO_TARGET_DIR:-target}/release/coffer-e2e" k8s build
# The container images, as a release would publish them (the Kubernetes test assembles and
# runs the same images from the same binaries).
"${CARGO_TARGET_DIR:-target}/release/coffer-e2e" image build --out "${CARGO_TARGET_DIR:-target}/images"
charts/ensure-helm.sh >/dev/null
cargo test --release --workspace --no-fail-fast
# The README's first command, started as a user would (after the build it builds nothing).
scripts/check-run.sh

# Fuzz targets (fuzz/, cargo-fuzz, nightly only): each runs for a bounded time from the
# committed seed corpus; new inputs go to a scratch folder, so the repository stays clean.
# Sanitizer "none": the crates are free of unsafe code, so AddressSanitizer would add build
# and run time without finding anything Rust's own checks miss.
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  for target in bucket_policy sigv4_canonical_request aws_chunked post_policy; do
    mkdir -p "$scratch/$target"
    echo "fuzz $target for ${FUZZ_SECONDS}s"
    if ! (cd fuzz && cargo +nightly fuzz run --sanitizer none "$target" "$scratch/$target" \
          "corpus/$target" -- -max_total_time="$FUZZ_SECONDS" >"$scratch/$target.log" 2>&1); then
      cat "$scratch/$target.log"
      echo "fuzz target $target failed; the crashing input is under fuzz/artifacts/$target/" >&2
      exit 1
    fi
    grep -E '^Done [0-9]+ runs' "$scratch/$target.log" || true
  done
else
  echo "SKIP fuzz targets: no nightly toolchain (rustup toolchain install nightly to run them)"
fi

# Operator chart and manifests: Argo CD health check under Lua, helm lint/template (helm is
# built once from its Go module into ~/.cache/coffer-e2e/go), kustomize renders.
charts/test.sh
