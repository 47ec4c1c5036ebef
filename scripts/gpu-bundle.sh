#!/usr/bin/env bash
# gpu-bundle.sh -- prepares .gpu/ (git-ignored) for scripts/gpu-check.sh on a GPU machine that has
# no Go, no network and gets only the working tree plus the paths carried explicitly (64 MiB in
# all): the CUDA build of sentibench and the nn/gpu test binary (xz-compressed), the IMDB archive,
# torch_ref.py, and the word-piece lengths of IMDB's train reviews for the bigru head's timing.
# Builds against scripts/cuda-toolkit.sh's CUDA 13.0 kit (KIT, default /tmp/sentibench-cuda13).
# SHARED is the shared folder (default ../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${SHARED:-${SENTIBENCH_SHARED:-../shared}}
kit=${KIT:-/tmp/sentibench-cuda13}
out=.gpu
eval "$(scripts/cuda-toolkit.sh "$kit")"
rm -rf "$out" && mkdir -p "$out/bin" "$out/data"
scripts/build-kernels.sh
go build -tags sentibench_cuda -trimpath -ldflags="-s -w" -o "$out/bin/sentibench" ./cmd/sentibench
go test -c -tags sentibench_cuda -trimpath -ldflags="-s -w" -o "$out/bin/gpu.test" ./nn/gpu
xz -T2 -6 "$out/bin/sentibench" "$out/bin/gpu.test"
cp "$shared/data/imdb/aclImdb_v1_labelled.tar.gz" "$out/data/"
cp "$shared/bench/torch_ref.py" "$out/"
python3 scripts/wordpiece_lengths.py "$shared/data/imdb/aclImdb_v1_labelled.tar.gz" \
  "$shared/models/bert-base-uncased-vocab/tokenizer.json" > "$out/bigru_lengths.txt"
git rev-parse HEAD > "$out/commit" 2>/dev/null || true
size=$(du -sm "$out" | cut -f1)
echo "gpu-bundle: $out is ${size} MiB:"; ls -la "$out" "$out/bin"
# The working tree goes along too (a few MiB); keep the bundle well under the 64 MiB limit.
[ "$size" -le 56 ] || { echo "gpu-bundle: $out is over 56 MiB" >&2; exit 1; }
