#!/usr/bin/env bash
# Runs Coffer: installs what the build needs (once), builds the server (release) and runs it
# with your arguments. Without any it serves ./data on http://127.0.0.1:9000 and prints the
# root credential; e.g. `./run.sh serve /mnt/d0 /mnt/d1 /mnt/d2 /mnt/d3 --address 0.0.0.0:9000`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/scripts/prereqs.sh" build
exec cargo run --quiet --release --manifest-path "$here/Cargo.toml" -p coffer-server -- "$@"
