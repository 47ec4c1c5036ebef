#!/usr/bin/env bash
# goinstall-check.sh -- proves that `go install github.com/sentibench/sentibench/cmd/sentibench@VERSION`
# works once the module is published, without publishing it: the committed tree (HEAD) is served
# as that version from a file-based module proxy (scripts/goinstall, golang.org/x/mod/zip), placed
# before the usual proxy, and `go install` runs with no GOFLAGS, as a user's would, into a fresh
# GOPATH (so a fresh module cache: every dependency comes from the proxies; the second install
# reuses it) and GOBIN, once with cgo and once with CGO_ENABLED=0. Each installed binary then trains a small cnn on the sample
# bundled in it. It fails if go.mod has a replace directive (go install pkg@version refuses those),
# if a file the build needs is not committed, or if an installed binary does not work.
# CI runs it (.ci/run); it needs the Go module proxy for the dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d /tmp/sentibench-goinstall.XXXX)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
module=github.com/sentibench/sentibench
version="v0.0.0-$(date -u +%Y%m%d%H%M%S)-$(git rev-parse --short=12 HEAD)"
(cd scripts/goinstall && go run . -dir ../.. -rev HEAD -version "$version" -out "$tmp/proxy")
proxy="file://$tmp/proxy,$(go env GOPROXY)"
for cgo in 1 0; do
  echo "== CGO_ENABLED=$cgo GOFLAGS= go install $module/cmd/sentibench@$version (fresh GOPATH)"
  CGO_ENABLED=$cgo GOFLAGS=-modcacherw GOPATH="$tmp/gopath" GOBIN="$tmp/bin-cgo$cgo" GOPROXY="$proxy" \
    GONOSUMDB="$module" go install "$module/cmd/sentibench@$version"
  bin="$tmp/bin-cgo$cgo/sentibench"
  "$bin" version | tee "$tmp/version"
  grep -q "$version" "$tmp/version"
  "$bin" train --model cnn --data sample --limit 300 --epochs 1 --run "$tmp/run-cgo$cgo" --progress quiet |
    grep -E '^(Data|Epoch: 01|Test)'
done
echo "goinstall-check: go install of $module/cmd/sentibench@$version works, with cgo and without"
