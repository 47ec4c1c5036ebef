#!/usr/bin/env python3
"""Times PyTorch's training step of the recipe's cnn model (torch_ref.py's CNNClassifier), the
baseline for Go's BenchmarkCNNTrainStep (nn/bench_test.go): B=64, T=200 (every review full
length), vocabulary 25,002, embedding 100, widths 3/4/5 x 100 filters, dropout 0.5, BCE on the
logit, Adam lr 1e-3; forward + backward + optimiser step, CPU.

  python3 scripts/bench_torch_cnn.py [--threads 2] [--iters 20] [--T 200] [--shared DIR]

Prints the median and minimum seconds per batch, tokens/s and the nominal GFLOP/s (3x the
forward convolutions' multiply-adds, as nn.TrainFLOPs counts them).
"""
import argparse
import os
import statistics
import sys
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--B", type=int, default=64)
    ap.add_argument("--T", type=int, default=200)
    ap.add_argument("--V", type=int, default=25002)
    default_shared = os.environ.get("SENTIBENCH_SHARED") or os.path.join(os.path.dirname(REPO), "shared")
    ap.add_argument("--shared", default=default_shared, help="folder holding bench/torch_ref.py")
    a = ap.parse_args()
    sys.path.insert(0, os.path.join(a.shared, "bench"))
    import torch_ref as tr

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = tr.CNNClassifier(a.V, 0.5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)
    crit = torch.nn.BCEWithLogitsLoss()
    x = torch.randint(2, a.V, (a.B, a.T))
    lengths = torch.full((a.B,), a.T, dtype=torch.int64)
    y = (torch.arange(a.B) % 2).float()
    model.train()

    def step():
        opt.zero_grad()
        loss = crit(model(x, lengths), y)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    flops = 3 * 2 * a.B * 100 * 100 * sum(w * (a.T - w + 1) for w in (3, 4, 5))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads: cnn train step B={a.B} T={a.T}: "
          f"median {med:.4f} s/batch (min {min(times):.4f}), {a.B * a.T / med:,.0f} tokens/s, "
          f"{flops / med / 1e9:.1f} GFLOP/s nominal")


if __name__ == "__main__":
    main()
