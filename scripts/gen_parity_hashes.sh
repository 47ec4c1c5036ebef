#!/usr/bin/env bash
# Writes data/testdata/torch_ref_parity.txt: the SHA-256 of the split.tsv and vocab.txt that
# torch_ref.py --dump-data writes, for the whole labelled archive and for --limit 300.
# data/parity_test.go recomputes both files in Go and compares. Takes a few minutes (torch_ref.py
# also runs a test pass of an untrained CNN). Usage, from the repository root:
#   scripts/gen_parity_hashes.sh [SHARED_DIR]      (default ../shared)
set -euo pipefail
shared=${1:-../shared}
archive=$shared/data/imdb/aclImdb_v1_labelled.tar.gz
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=data/testdata/torch_ref_parity.txt
{
  echo "# SHA-256 of torch_ref.py --dump-data output (split.tsv, vocab.txt), seed 1234, $(basename "$archive")"
  echo "# written by scripts/gen_parity_hashes.sh; columns: limit file sha256"
} > "$out.tmp"
for limit in 300 all; do
  args=()
  [ "$limit" != all ] && args=(--limit "$limit")
  python3 "$shared/bench/torch_ref.py" --data "$archive" --model cnn --epochs 0 "${args[@]}" \
    --dump-data "$tmp/$limit" > "$tmp/$limit.log"
  for f in split.tsv vocab.txt; do
    echo "$limit $f $(sha256sum "$tmp/$limit/$f" | cut -d' ' -f1)" >> "$out.tmp"
  done
done
mv "$out.tmp" "$out"
cat "$out"
