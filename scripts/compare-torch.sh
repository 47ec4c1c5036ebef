#!/usr/bin/env bash
# compare-torch.sh: time sentibench and the PyTorch reference (../shared/bench/torch_ref.py) on
# the same data, split, batches (the recipe's generator makes them identical), model and threads,
# one after the other in the same sitting, and print one Markdown table.
#
#   scripts/compare-torch.sh MODEL [ARGS...]     e.g.
#   scripts/compare-torch.sh cnn --epochs 1
#   scripts/compare-torch.sh lstm --dropout 0.2 --epochs 1 --max-batches 40
#
# ARGS go to both trainers (both know --epochs, --max-batches, --dropout, --limit, --seed,
# --batch-size). Needs python3 with torch (PyPI) for the reference. Environment: DATA (default
# ../shared/data/imdb/aclImdb_v1_labelled.tar.gz), THREADS (default 2), OUT (default a temp dir),
# SENTIBENCH (default bin/sentibench, built if missing), TORCH_REF (default ../shared/bench/torch_ref.py).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: scripts/compare-torch.sh MODEL [ARGS...]}
shift
DATA=${DATA:-../shared/data/imdb/aclImdb_v1_labelled.tar.gz}
THREADS=${THREADS:-2}
TORCH_REF=${TORCH_REF:-../shared/bench/torch_ref.py}
SENTIBENCH=${SENTIBENCH:-bin/sentibench}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
[ -x "$SENTIBENCH" ] || go build -o "$SENTIBENCH" ./cmd/sentibench

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" >&2
echo "== sentibench $model $*" >&2
/usr/bin/time -f '%M' -o "$OUT/go.maxrss" "$SENTIBENCH" train --model "$model" --data "$DATA" --threads "$THREADS" \
  --run "$OUT/go-$model" --progress lines "$@" 2>&1 | grep -E '^(Epoch:|Test|Model|Data)' >&2
echo "== torch_ref.py $model $*" >&2
/usr/bin/time -f '%M' -o "$OUT/torch.maxrss" python3 "$TORCH_REF" --model "$model" --data "$DATA" --threads "$THREADS" \
  --json "$OUT/torch-$model.jsonl" "$@" 2>&1 | grep -E '^(Epoch:|Test|Model|Data)' >&2
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$OUT" "$model" <<'PY'
import json, sys
out, model = sys.argv[1], sys.argv[2]
def epochs(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    return [r for r in rows if "epoch" in r], next((r for r in rows if "test_acc" in r), {})
g, gf = epochs(f"{out}/go-{model}/run.jsonl")
t, tf = epochs(f"{out}/torch-{model}.jsonl")
maxrss = {k: int(open(f"{out}/{k}.maxrss").read().split()[-1]) / 1024 for k in ("go", "torch")}
print(f"| epoch | sentibench s | PyTorch s | ratio (Go/PyTorch) | sentibench train/valid s | PyTorch train/valid s | sentibench val acc | PyTorch val acc |")
print("|---|---|---|---|---|---|---|---|")
for a, b in zip(g, t):
    print(f"| {a['epoch']} | {a['epoch_seconds']:.1f} | {b['epoch_seconds']:.1f} | {a['epoch_seconds']/b['epoch_seconds']:.2f} | "
          f"{a['train_seconds']:.1f} / {a['valid_seconds']:.1f} | {b['train_seconds']:.1f} / {b['valid_seconds']:.1f} | "
          f"{100*a['valid_acc']:.2f}% | {100*b['valid_acc']:.2f}% |")
print()
print(f"Peak RSS of the whole process: sentibench {maxrss['go']:.0f} MiB, PyTorch {maxrss['torch']:.0f} MiB "
      f"(per epoch, sentibench: {', '.join('%.0f' % r.get('peak_rss_mib', 0) for r in g)} MiB). "
      f"Train batches per epoch: {g[0]['train_batches']} (both). Test acc: sentibench {100*gf.get('test_acc', 0):.2f}%, "
      f"PyTorch {100*tf.get('test_acc', 0):.2f}%.")
PY
