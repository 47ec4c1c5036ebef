#!/usr/bin/env bash
# goinstall-check.sh -- proves that `go install github.com/sentibench/sentibench/cmd/sentibench@VERSION`
# works once the module is published, without publishing it: the committed tree (HEAD) is served
# as that version from a file-based module proxy (scripts/goinstall, golang.org/x/mod/zip), placed
# before the usual proxy, and `go install` runs with no GOFLAGS, as a user's would, into a fresh
# GOBIN. It fails if go.mod has a replace directive (go install pkg@version refuses those), if a
# file the build needs is not committed, or if the installed binary does not run.
# CI runs it (.ci/run); it needs the Go module proxy for the dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d /tmp/sentibench-goinstall.XXXX)
module=github.com/sentibench/sentibench
# A version of its own each time, so that the module cache never holds an older zip under it.
version="v0.0.0-$(date -u +%Y%m%d%H%M%S)-$(git rev-parse --short=12 HEAD)"
cleanup() {
  # The module cache keeps what go install downloaded; drop this check's copies of sentibench.
  modcache=$(go env GOMODCACHE)
  chmod -R u+w "$modcache/$module@$version" 2>/dev/null || true
  rm -rf "$modcache/$module@$version" "$modcache/cache/download/$module/@v/$version".* "$tmp"
}
trap cleanup EXIT
(cd scripts/goinstall && go run . -dir ../.. -rev HEAD -version "$version" -out "$tmp/proxy")
echo "== GOFLAGS= go install $module/cmd/sentibench@$version"
GOFLAGS= GOPROXY="file://$tmp/proxy,$(go env GOPROXY)" GONOSUMDB="$module" GOBIN="$tmp/bin" \
  go install "$module/cmd/sentibench@$version"
"$tmp/bin/sentibench" version
"$tmp/bin/sentibench" train --help | head -3
echo "goinstall-check: go install of $module/cmd/sentibench@$version works"
