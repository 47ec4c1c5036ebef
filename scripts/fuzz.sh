#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (default 60s): the readers of the files
# users hand sentibench (safetensors, torch.save, tokenizer files, data files, feature caches,
# run logs, config.json) and the predict API. `make test` runs only their seed inputs; this
# searches. A failure leaves its input under the package's testdata/fuzz/, where `go test`
# replays it from then on: fix the bug, and commit that input as the regression test.
#
#   scripts/fuzz.sh            # every target, 60 s each
#   FUZZTIME=5m scripts/fuzz.sh ./data   # the targets of one package
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-60s}
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
# A failure counts only when go test wrote a failing input: Go 1.26's fuzzing coordinator can end
# a run with a bare "context deadline exceeded" at the -fuzztime boundary on a busy machine
# (golang/go#75804, fixed in Go 1.27), which is reported here as such, not as a failure.
list=$(go list "${pkgs[@]}") # fails here, naming it, for a package that does not exist
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
for pkg in $list; do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "== $pkg $target ($fuzztime)"
    corpus="$dir/testdata/fuzz/$target"
    before=$({ ls "$corpus" 2>/dev/null || true; } | wc -l)
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$log"; then
      after=$({ ls "$corpus" 2>/dev/null || true; } | wc -l)
      if [ "$after" -le "$before" ] && grep -q '^    context deadline exceeded$' "$log"; then
        echo "!! $target: ended without a failing input (Go's fuzz coordinator race, golang/go#75804); not counted"
      else
        echo "!! $target: failed (see above; a failing input, if any, is in $corpus)"
        status=1
      fi
    fi
  done
done
exit $status
