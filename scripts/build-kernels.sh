#!/usr/bin/env bash
# build-kernels.sh -- compiles nn/gpu/kernels.cu with nvcc into nn/gpu/kernels.fatbin, which the
# sentibench_cuda build embeds: machine code for sm_80 (A100) and sm_90 (H100) plus PTX for
# compute_80, which newer GPUs compile at load time. Warnings are errors. With CHECK=1 it also
# compiles PTX for sm_80 and sm_90 on their own and checks that each holds every kernel.
# nvcc comes from PATH (scripts/cuda-toolkit.sh provides one) or $CUDA_HOME/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
nvcc=$(command -v nvcc || echo "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc")
[ -x "$nvcc" ] || { echo "build-kernels: no nvcc (run scripts/cuda-toolkit.sh, or set CUDA_HOME)" >&2; exit 2; }
src=nn/gpu/kernels.cu
flags=(-std=c++17 -O3 -Werror all-warnings -Xptxas -warn-spills,-warn-lmem-usage)
"$nvcc" "${flags[@]}" -fatbin \
  -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=compute_80 \
  -o nn/gpu/kernels.fatbin "$src"
echo "build-kernels: nn/gpu/kernels.fatbin ($(wc -c < nn/gpu/kernels.fatbin) bytes, $("$nvcc" --version | tail -1))"
if [ "${CHECK:-0}" = 1 ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  want=$(grep -oE 'extern "C" __global__ void [a-z0-9_]+' "$src" | awk '{print $NF}' | sort)
  for arch in 80 90; do
    "$nvcc" "${flags[@]}" -ptx -arch=compute_$arch -o "$tmp/k$arch.ptx" "$src"
    "$nvcc" "${flags[@]}" -cubin -arch=sm_$arch -o "$tmp/k$arch.cubin" "$src"
    got=$(grep -oE '^\.visible \.entry [a-z0-9_]+' "$tmp/k$arch.ptx" | awk '{print $NF}' | sort)
    if [ "$got" != "$want" ]; then
      echo "build-kernels: the sm_$arch PTX's kernels differ from the source's:"; diff <(echo "$want") <(echo "$got"); exit 1
    fi
    echo "build-kernels: sm_$arch: PTX and cubin, $(echo "$want" | wc -l) kernels, no warnings"
  done
fi
