#!/usr/bin/env python3
"""PyTorch's side of BenchmarkBiGRUEpoch (nn/gpu/bench_gpu_test.go): one epoch of torch_ref.py's
GRUHead (input 384, GRU 256 x 2 layers, bidirectional, dropout 0.25) over cached features: train on
the first 17,500 sequences (the recipe's bucketed batches of 128), evaluate the next 7,500. The
features are random rows of a fixed host pool, uploaded per batch as torch_ref.py's fp32 features
from its cache are; the encoder is not timed. Lengths: a file of word-piece counts, one per line.

  python3 scripts/bench_bigru_head.py --lengths .gpu/bigru_lengths.txt --torch-ref .gpu/torch_ref.py \\
      --device cuda --json out.json
"""
import argparse
import importlib.util
import json
import time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", required=True)
    ap.add_argument("--torch-ref", required=True, help="path of torch_ref.py (for GRUHead and the batching)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("torch_ref", args.torch_ref)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)

    lengths = [int(x) for x in open(args.lengths).read().split()]
    n_train = min(17500, len(lengths) * 7 // 10)
    dim, pool_rows = 384, 1 << 16
    torch.manual_seed(1234)
    device = torch.device(args.device)
    pool = torch.randn(pool_rows, dim)
    labels = torch.randint(0, 2, (len(lengths),)).float()
    model = ref.GRUHead(dim, 0.25).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = torch.nn.BCEWithLogitsLoss()
    rng = ref.SplitMix64(1234)

    def batch(ex):
        T = lengths[ex[0]]
        lens = torch.tensor([lengths[e] for e in ex], dtype=torch.int64)
        rows = (torch.tensor(ex)[:, None] * 512 + torch.arange(T)[None, :]) % pool_rows
        x = pool[rows] * (torch.arange(T)[None, :] < lens[:, None]).float()[:, :, None]
        return x.to(device), lens, labels[ex].to(device)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    model.train()
    for ex in ref.bucket_batches(list(range(n_train)), lengths, 128, rng):
        x, lens, y = batch(ex)
        opt.zero_grad()
        loss = crit(model(x, lens), y)
        loss.backward()
        opt.step()
        loss.item()
    model.eval()
    with torch.no_grad():
        for ex in ref.eval_batches(list(range(n_train, len(lengths))), lengths, 128):
            x, lens, y = batch(ex)
            F.binary_cross_entropy_with_logits(model(x, lens), y, reduction="sum").item()
    if device.type == "cuda":
        torch.cuda.synchronize()
    rec = {"epoch_seconds": time.perf_counter() - t0, "torch_version": torch.__version__}
    if device.type == "cuda":
        rec["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(rec))
    if args.json:
        with open(args.json, "w") as f:
            f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
