#!/usr/bin/env bash
# gpu-check.sh -- everything that needs a GPU, in one call of at most 8 minutes, from the repo root
# on a GPU machine (CUDA 13 driver and toolkit, PyTorch; no Go, no network) that received this
# working tree and .gpu/ (scripts/gpu-bundle.sh). See scripts/gpu-check.md for the exact call.
#   1. the GPU tests of nn/gpu: the dropout hash bit for bit, every model's step against the CPU
#      ops (<= 1e-4 relative), dropout against the emulator, a few training steps of each model;
#   2. one epoch of lstm and of cnn on the full IMDB with `sentibench train --device cuda` and
#      with torch_ref.py --device cuda on the same card;
#   3. one epoch of the bigru head over cached (random) features, both sides;
#   4. the frozen encoder on the GPU: an epoch of the head with cached features against the same
#      epoch recomputing the encoder (bert-base's and MiniLM-L6's shapes), and `sentibench train
#      --device cuda --model bigru` building its feature cache on the GPU, then recomputing;
#   5. one table: epoch time, ratio to PyTorch, peak GPU memory per epoch.
# Logs and JSON go to $OUT (default /tmp/gpu-check). Each stage has a time limit; stages that
# would overrun the budget (BUDGET seconds, default 450) are skipped and say so.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
budget=${BUDGET:-450}
t0=$(date +%s)
work=$(mktemp -d /tmp/gpucheck.XXXX)
log=$out/gpu-check.log
say() { echo "$*" | tee -a "$log"; }
left() { echo $((budget - ($(date +%s) - t0))); }
# stage NAME LIMIT CMD...: runs CMD with its output in $out/NAME.log, within LIMIT seconds and
# the budget.
stage() {
  local name=$1 limit=$2; shift 2
  local l; l=$(left)
  if [ "$l" -lt 20 ]; then say "== $name: skipped (budget spent)"; return 1; fi
  [ "$limit" -gt "$l" ] && limit=$l
  say "== $name (limit ${limit}s)"
  local s; s=$(date +%s)
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  say "   rc=$rc in $(($(date +%s) - s))s; last lines:"; tail -n 4 "$out/$name.log" | sed 's/^/   | /' | tee -a "$log"
  return $rc
}

# Binaries: unpack (xz, or Python's lzma where xz is missing).
mkdir -p "$work/bin"
for b in sentibench gpu.test; do
  xz -dc ".gpu/bin/$b.xz" > "$work/bin/$b" 2>/dev/null ||
    python3 -c 'import lzma,sys; open(sys.argv[2],"wb").write(lzma.open(sys.argv[1]).read())' ".gpu/bin/$b.xz" "$work/bin/$b" ||
    { say "cannot unpack .gpu/bin/$b.xz (run scripts/gpu-bundle.sh first)"; exit 2; }
  chmod +x "$work/bin/$b"
done
# Libraries: cuBLAS 13 from the toolkit, else from PyTorch's wheels; libcuda from the driver.
cuda=${CUDA_HOME:-/usr/local/cuda}
wheel=$(python3 -c 'import nvidia.cu13, os; print(os.path.join(nvidia.cu13.__path__[0], "lib"))' 2>/dev/null ||
        python3 -c 'import nvidia.cublas, os; print(os.path.join(nvidia.cublas.__path__[0], "lib"))' 2>/dev/null || true)
export LD_LIBRARY_PATH="$cuda/lib64${wheel:+:$wheel}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export SENTIBENCH_REQUIRE_GPU=1 SENTIBENCH_BIGRU_LENGTHS=$PWD/.gpu/bigru_lengths.txt

say "== machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
say "   commit $(cat .gpu/commit 2>/dev/null || echo '?'); $(python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1)"
ldd "$work/bin/gpu.test" | grep -E 'cublas|cuda|not found' | sed 's/^/   /' | tee -a "$log"

# The tests read their fixtures relative to the package (nn/bert's testdata): run them there.
stage tests 150 bash -c 'cd nn/gpu && exec "$0" "$@"' "$work/bin/gpu.test" -test.v -test.count=1 -test.timeout=140s
tests_rc=$?
grep -E '^(--- |ok|FAIL|PASS)' "$out/tests.log" | grep -v -- '--- PASS: .*/' | sed 's/^/   /' | tee -a "$log"

# What the bigru's feature cache saves on a GPU: one epoch of the head over cached features and
# the same epoch recomputing the encoder (random encoders of bert-base's and MiniLM-L6's shapes,
# the first 3,000 of IMDB's word-piece lengths).
stage sentibench-encoder 150 "$work/bin/gpu.test" -test.run '^$' -test.bench BiGRUEncoderEpoch -test.benchtime 1x
# The command line's GPU path for the bigru: the feature cache built on the GPU (nn/bert's mini
# BERT, from the working tree: a tiny vocabulary, 64 positions), then an epoch over it; and an
# epoch recomputing the encoder on the GPU.
enc=nn/bert/testdata/mini-bert
stage sentibench-bigru-cached 90 "$work/bin/sentibench" train --device cuda --model bigru --encoder "$enc" \
  --data .gpu/data/aclImdb_v1_labelled.tar.gz --limit 300 --epochs 1 --feature-cache "$work/features" \
  --run "$work/runs/bigru-cached" --progress lines
stage sentibench-bigru-recomputed 90 "$work/bin/sentibench" train --device cuda --model bigru --encoder "$enc" \
  --data .gpu/data/aclImdb_v1_labelled.tar.gz --limit 300 --epochs 1 --feature-cache none \
  --run "$work/runs/bigru-recomputed" --progress lines
for r in bigru-cached bigru-recomputed; do cp "$work/runs/$r/run.jsonl" "$out/sentibench-$r.jsonl" 2>/dev/null; done

# A training step of the recipe's lstm on 64 reviews of about 230 tokens: ms/step, a diagnostic.
stage sentibench-lstm-step 40 "$work/bin/gpu.test" -test.run '^$' -test.bench LSTMStep -test.benchtime 20x

data=.gpu/data/aclImdb_v1_labelled.tar.gz
for model in lstm cnn; do
  stage "sentibench-$model" 120 "$work/bin/sentibench" train --device cuda --model "$model" --epochs 1 \
    --data "$data" --run "$work/runs/$model" --progress lines
  cp "$work/runs/$model/run.jsonl" "$out/sentibench-$model.jsonl" 2>/dev/null
  stage "torch-$model" 150 python3 .gpu/torch_ref.py --data "$data" --model "$model" --epochs 1 --device cuda \
    --threads 8 --json "$out/torch-$model.jsonl"
done
stage sentibench-bigru 90 "$work/bin/gpu.test" -test.run '^$' -test.bench BiGRUEpoch -test.benchtime 1x
stage torch-bigru 90 python3 scripts/bench_bigru_head.py --lengths .gpu/bigru_lengths.txt \
  --torch-ref .gpu/torch_ref.py --device cuda --json "$out/torch-bigru.json"

python3 - "$out" <<'PY' | tee -a "$log"
import json, os, re, sys
out = sys.argv[1]
def first_json(path, key):
    try:
        for line in open(path):
            rec = json.loads(line)
            if key in rec:
                return rec
    except (OSError, ValueError):
        pass
    return {}
rows = []
for model in ("lstm", "cnn", "bigru"):
    if model == "bigru":
        go = {}
        try:
            m = re.search(r"BenchmarkBiGRUEpoch\S*\s+1\s+.*?([\d.]+) epoch_s\s+([\d.]+) peak_MiB", open(os.path.join(out, "sentibench-bigru.log")).read())
            if m:
                go = {"epoch_seconds": float(m.group(1)), "peak_gpu_mib": float(m.group(2))}
        except OSError:
            pass
        pt = first_json(os.path.join(out, "torch-bigru.json"), "epoch_seconds")
    else:
        go = first_json(os.path.join(out, f"sentibench-{model}.jsonl"), "epoch_seconds")
        pt = first_json(os.path.join(out, f"torch-{model}.jsonl"), "epoch_seconds")
    g, p = go.get("epoch_seconds"), pt.get("epoch_seconds")
    f = lambda x, d=1: "-" if x is None else f"{x:.{d}f}"
    rows.append((model + (" (head)" if model == "bigru" else ""), f(g), f(p), f(g / p, 2) if g and p else "-",
                 f(go.get("peak_gpu_mib"), 0), f(pt.get("peak_cuda_mib"), 0)))
head = ("model", "sentibench s/epoch", "PyTorch s/epoch", "ratio", "sentibench peak GPU MiB", "PyTorch peak GPU MiB")
w = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
for r in [head] + rows:
    print(" | ".join(c.rjust(w[i]) for i, c in enumerate(r)))
try:  # the feature cache's saving (BenchmarkBiGRUEncoderEpoch)
    for line in open(os.path.join(out, "sentibench-encoder.log")):
        if line.startswith("BenchmarkBiGRUEncoderEpoch"):
            print("encoder:", " ".join(line.split()))
except OSError:
    pass
for model in ("lstm", "cnn"):  # where sentibench's epoch went
    rec = first_json(os.path.join(out, f"sentibench-{model}.jsonl"), "epoch_seconds")
    if rec:
        phases = ", ".join(f"{k} {v:.2f}s" for k, v in sorted(rec.get("phase_seconds", {}).items()))
        print(f"sentibench {model}: {phases}; {rec.get('tokens_per_second', 0):,.0f} tokens/s; GPU used {rec.get('gpu_used_mib', 0):.0f} of {rec.get('gpu_total_mib', 0):.0f} MiB")
PY
say "== done in $(($(date +%s) - t0))s; GPU tests rc=$tests_rc"
rm -rf "$work"
exit "$tests_rc"
