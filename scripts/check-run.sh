#!/usr/bin/env bash
# The README's first command as a user runs it, from another folder: `./run.sh serve DIR`
# installs what it needs, builds (nothing to build after ./test.sh's build: one feature set,
# see Cargo.toml), serves the folder and prints the endpoint and a generated root credential,
# which then works with the aws CLI. Run by ./test.sh after the test suites (not from inside
# `cargo test`, whose environment would make the inner cargo rebuild RocksDB's bindings).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then kill -TERM -- "-$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
env -u COFFER_ROOT_USER -u COFFER_ROOT_PASSWORD setsid "$repo/run.sh" serve data --address 127.0.0.1:0 >out.log 2>err.log &
server=$!
for _ in $(seq 1 600); do
  grep -q '^COFFER_ROOT_PASSWORD=' out.log && break
  if ! kill -0 "$server" 2>/dev/null; then cat out.log err.log; echo "./run.sh exited before serving" >&2; exit 1; fi
  sleep 0.5
done
grep -q '^COFFER_ROOT_PASSWORD=' out.log || { cat out.log err.log; echo "./run.sh printed no credential in 300 s" >&2; exit 1; }
endpoint="$(sed -n 's/^endpoint=//p' out.log)"
export AWS_ACCESS_KEY_ID="$(sed -n 's/^COFFER_ROOT_USER=//p' out.log)"
export AWS_SECRET_ACCESS_KEY="$(sed -n 's/^COFFER_ROOT_PASSWORD=//p' out.log)"
export AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
aws --endpoint-url "$endpoint" s3 mb s3://notes >/dev/null
echo "served by ./run.sh" | aws --endpoint-url "$endpoint" s3 cp - s3://notes/hello.txt >/dev/null
[ "$(aws --endpoint-url "$endpoint" s3 cp s3://notes/hello.txt -)" = "served by ./run.sh" ] \
  || { echo "./run.sh: the object did not read back" >&2; exit 1; }
[ -d "$work/data" ] || { echo "./run.sh: the drive folder is not relative to the caller" >&2; exit 1; }
echo "./run.sh: serves $endpoint with the credential it printed: ok"
