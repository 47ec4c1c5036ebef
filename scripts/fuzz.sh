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
status=0
for pkg in $(go list "${pkgs[@]}"); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "== $pkg $target ($fuzztime)"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"; then
      status=1
    fi
  done
done
exit $status
