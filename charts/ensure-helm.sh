#!/usr/bin/env bash
# Prints the path of a helm binary built from its Go module at a pinned version, building it
# first (minutes, once) into the cache the e2e Go tools use: $XDG_CACHE_HOME/coffer-e2e/go
# (default ~/.cache/coffer-e2e/go). Later runs find the binary and return at once.
set -euo pipefail
HELM_VERSION="${HELM_VERSION:-v3.19.0}"
root="${XDG_CACHE_HOME:-$HOME/.cache}/coffer-e2e/go"
bin="$root/bin/helm-$HELM_VERSION"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
echo "building helm.sh/helm/v3@$HELM_VERSION into $bin (this can take minutes)" >&2
work="$root/build/helm-$HELM_VERSION"
rm -rf "$work" && mkdir -p "$work" "$root/bin"
cd "$work"
# A throwaway main module requiring only helm resolves exactly the dependencies `go install`
# would, without asking the proxy for helm's version list (which the mirror may refuse).
export GOPATH="$root" GOMODCACHE="$root/pkg/mod" GOTOOLCHAIN=local GOFLAGS=-mod=mod
go mod init coffer-e2e-build/helm >&2
go get "helm.sh/helm/v3@$HELM_VERSION" >&2
go build -o "$bin.tmp" helm.sh/helm/v3/cmd/helm >&2
mv "$bin.tmp" "$bin"
echo "$bin"
