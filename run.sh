#!/usr/bin/env bash
# Runs Coffer: installs what the build needs (once), builds the server (release) and runs it
# with your arguments, from the folder you are in. Without any it serves ./data on
# http://127.0.0.1:9000 and prints the root credential; e.g.
# `./run.sh serve /mnt/d0 /mnt/d1 /mnt/d2 /mnt/d3 --address 0.0.0.0:9000`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/scripts/prereqs.sh" build
# Built from the repository's folder, where .cargo/config.toml links Debian's RocksDB (from
# anywhere else cargo would not read it and would compile RocksDB's C++), with `--bin` at the
# workspace root, not `-p`: the test build's feature set (see Cargo.toml), so after ./test.sh
# nothing is built again.
(cd "$here" && cargo build --quiet --release --bin coffer-server)
exec "${CARGO_TARGET_DIR:-$here/target}/release/coffer-server" "$@"
