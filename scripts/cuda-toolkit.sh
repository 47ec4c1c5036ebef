#!/usr/bin/env bash
# cuda-toolkit.sh DIR -- a CUDA 13.0 build kit from NVIDIA's PyPI wheels, for machines without
# a GPU or a CUDA install (CI, developers): nvcc (with cicc, ptxas, fatbinary), the CUDA headers
# (with CCCL, which cublas_v2.h needs), libcublas, and a stub libcuda.so.1 whose every function
# returns CUDA_ERROR_NO_DEVICE (the real one comes with the NVIDIA driver). Binaries linked here
# run anywhere; on a machine with a GPU they load the driver's libcuda.so.1 instead of the stub.
#
# It prints the environment to build with, e.g.  eval "$(scripts/cuda-toolkit.sh /tmp/cu13)".
# The wheels are pinned to CUDA 13.0: PTX from a newer nvcc would not load on a 13.0 driver.
# Nothing is cached; a DIR that already holds a complete kit is reused.
set -euo pipefail
dir=${1:?usage: cuda-toolkit.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
top=$dir/nvidia/cu13
wheels="nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cublas==13.0.2.14"

if [ ! -f "$dir/.complete" ]; then
  py=$(command -v python3)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  t0=$(date +%s)
  # shellcheck disable=SC2086
  "$py" -m pip download --no-deps --no-cache-dir --quiet --dest "$tmp" $wheels >&2
  t1=$(date +%s)
  for w in "$tmp"/*.whl; do
    "$py" - "$w" "$dir" <<'PY'
import os, sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        name = info.filename
        # Static libraries and libnvblas are not needed to build.
        if not name.startswith("nvidia/cu13/") or name.endswith(".a") or "libnvblas" in name:
            continue
        z.extract(info, dest)
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(os.path.join(dest, name), mode | 0o400)
PY
  done
  chmod +x "$top"/bin/* "$top"/nvvm/bin/* 2>/dev/null || true
  # -lcublas wants libcublas.so; the soname stays libcublas.so.13.
  ln -sf libcublas.so.13 "$top/lib/libcublas.so"
  # The stub driver library: every function cuda.h declares, returning CUDA_ERROR_NO_DEVICE.
  mkdir -p "$top/lib/stubs"
  gcc -E -P -I"$top/include" -x c - <<<'#include <cuda.h>' |
    grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d '( \t' | sort -u |
    awk '{ printf "int %s(void) { return 100; }\n", $1 }' > "$top/lib/stubs/libcuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$top/lib/stubs/libcuda.so.1" "$top/lib/stubs/libcuda_stub.c"
  ln -sf libcuda.so.1 "$top/lib/stubs/libcuda.so"
  touch "$dir/.complete"
  echo "cuda-toolkit: wheels downloaded in $((t1 - t0)) s, unpacked in $(($(date +%s) - t1)) s into $dir ($(du -sh "$dir" | cut -f1))" >&2
fi

cat <<ENV
export CUDA_KIT=$top
export PATH=$top/bin:\$PATH
export CGO_CFLAGS="-I$top/include \${CGO_CFLAGS:-}"
export CGO_LDFLAGS="-L$top/lib -L$top/lib/stubs \${CGO_LDFLAGS:-}"
export LD_LIBRARY_PATH=$top/lib:$top/lib/stubs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
ENV
