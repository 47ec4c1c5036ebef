#!/usr/bin/env bash
# ci-gpu-compile.sh -- CI's check of the GPU code on a machine without a GPU (.ci/run calls it):
# builds a CUDA 13.0 kit from NVIDIA's PyPI wheels (scripts/cuda-toolkit.sh: nvcc, headers,
# cuBLAS, a stub libcuda), then
#   - nvcc compiles every kernel to PTX and cubins for sm_80 and sm_90, warnings as errors;
#   - g++ compiles kernels.cu itself for the CPU (scripts/kernels_host_check.cc), and the frozen
#     encoder's kernels and a block reduction run against double-precision references;
#   - go vet and go build with the sentibench_cuda tag, over the whole module;
#   - every test binary of the tagged build links and starts (go test -run XXX);
#   - the GPU package's tests run: the emulator's CPU parity and the host-side logic for real,
#     the GPU tests skip (the stub driver has no device) and the tagged build's device error.
# Nothing is cached; the kit (about 830 MB unpacked) is deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
kit=$(mktemp -d /tmp/sentibench-cuda.XXXX)
trap 'rm -rf "$kit"' EXIT
eval "$(scripts/cuda-toolkit.sh "$kit")"
CHECK=1 scripts/build-kernels.sh
echo "== kernels.cu's own code on the CPU (scripts/kernels_host_check.cc, g++, a thread per CUDA thread)"
g++ -std=c++20 -O1 -pthread -Wno-sign-compare -o "$kit/kernels_host_check" scripts/kernels_host_check.cc
"$kit/kernels_host_check"
export GOFLAGS="${GOFLAGS:-} -tags=sentibench_cuda"
echo "== go vet -tags sentibench_cuda ./..."
go vet ./...
echo "== go build -tags sentibench_cuda ./..."
go build ./...
echo "== go test -tags sentibench_cuda -run XXX ./... (every test binary links and starts)"
go test -count=1 -run XXX ./...
echo "== go test -tags sentibench_cuda ./nn/gpu ./train -run 'Emulat|Training|Parity|HostLoss|Dropout|Memory|Reject|Layout|CSR|Packing|Grid|Pool|SizeClass|KeepMask|Open|Device|GPUOrdinal'"
if ! go test -count=1 -v ./nn/gpu ./train -run 'Emulat|Training|Parity|HostLoss|Dropout|Memory|Reject|Layout|CSR|Packing|Grid|Pool|SizeClass|KeepMask|Open|Device|GPUOrdinal' > "$kit/test.log" 2>&1; then
  cat "$kit/test.log"
  exit 1
fi
grep -E '^(--- PASS|--- SKIP|ok)' "$kit/test.log" | sed 's/ (.*//' | sort | uniq -c
echo "ci-gpu-compile: done in $(($(date +%s) - t0)) s"
