#!/usr/bin/env python3
"""PyTorch baseline for the fused recurrent ops of package nn (BenchmarkLSTM, BenchmarkGRU in
nn/lstm_test.go and nn/gru_test.go). Tooling only:

  python3 scripts/bench_torch_rnn.py [--threads 2] [--iters 5] [--cases lstm/train/full/packed,...]

It times, at the same shapes and with the same FLOP count as the Go benchmarks, one training
step of the layer alone (forward, then backward of sum(final * r), where final is the last
layer's [forward | backward] final states) and one forward pass under no_grad (eval):
  lstm: torch.nn.LSTM(100, 256, num_layers=2, bidirectional=True), B=64, T=200, input gradient on
  gru:  torch.nn.GRU(384, 256, num_layers=2, bidirectional=True), B=64, T=200, frozen input
both packed (pack_padded_sequence, enforce_sorted=True: what the recipe runs) and unpacked (the
padded tensor fed as is: PyTorch's fastest path, but it runs every sequence to T), with all
lengths T ("full") or uniform in [T/2, T] with one at T ("varied"; GFLOP/s then counts only the
real tokens, as the Go benchmark does). Dropout is 0.5 in train mode, as the recipe's lstm.
Prints one line per case: median and best seconds per step, GFLOP/s at the best time, and the
median CPU time per step over all threads (less sensitive than wall time to a busy machine;
compare with the Go benchmark's cores x s/op).
"""
import argparse
import statistics
import time

import torch
from torch.nn.utils.rnn import pack_padded_sequence


def flops(gates, inp, hidden, layers, dirs, tokens, train, input_grad):
    f = 0.0
    for l in range(layers):
        i = inp if l == 0 else dirs * hidden
        fwd = 2 * gates * hidden * (i + hidden)
        if not train:
            f += fwd
            continue
        f += 3 * fwd
        if l == 0 and not input_grad:
            f -= 2 * gates * hidden * i
    return f * dirs * tokens


def bench(cell, train, varied, packed, args):
    T, B, H = 200, 64, 256
    inp = 100 if cell == "lstm" else 384
    gates = 4 if cell == "lstm" else 3
    input_grad = cell == "lstm"
    torch.manual_seed(1)
    cls = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    mod = cls(inp, H, num_layers=2, bidirectional=True, dropout=0.5)
    mod.train(train)
    g = torch.Generator().manual_seed(2)
    if varied:
        lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
        lengths[0] = T
        lengths, _ = torch.sort(lengths, descending=True)
    else:
        lengths = torch.full((B,), T, dtype=torch.int64)
    tokens = int(lengths.sum()) if packed else T * B
    x = torch.randn(T, B, inp, generator=g)
    r = torch.randn(B, 2 * H, generator=g)

    cpu = []

    def step():
        xx = x.clone().requires_grad_(input_grad and train)
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.set_grad_enabled(train):
            src = pack_padded_sequence(xx, lengths, enforce_sorted=True) if packed else xx
            _, hn = mod(src)
            h = hn[0] if cell == "lstm" else hn
            final = torch.cat((h[-2], h[-1]), 1)
            if train:
                mod.zero_grad(set_to_none=False)
                (final * r).sum().backward()
        cpu.append(time.process_time() - c0)
        return time.perf_counter() - t0

    for _ in range(args.warmup):
        step()
    cpu.clear()
    ts = [step() for _ in range(args.iters)]
    best, med = min(ts), statistics.median(ts)
    # Unpacked runs compute all T*B positions; count only real tokens for a like-for-like rate.
    real = int(lengths.sum())
    gf = flops(gates, inp, H, 2, 2, real, train, input_grad) / best / 1e9
    print(f"{cell} {'train' if train else 'eval'} {'varied' if varied else 'full'} "
          f"{'packed' if packed else 'unpacked'}: median {med:.3f} s, best {best:.3f} s, "
          f"{gf:.1f} GFLOP/s (real tokens {real}), {real / best:.0f} tokens/s, "
          f"CPU {statistics.median(cpu):.2f} s per step (all threads)", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--cases", default="",
                    help="comma-separated cell/mode/lengths/packing names to run, e.g. "
                         "lstm/train/full/packed,gru/eval/varied/unpacked; a part may be *; default all")
    args = ap.parse_args()
    wanted = [c.split("/") for c in args.cases.split(",") if c]

    def selected(*name):
        return not wanted or any(all(w in ("*", n) for w, n in zip(c, name)) for c in wanted)

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    for cell in ("lstm", "gru"):
        for train in (True, False):
            for varied in (False, True):
                for packed in (True, False):
                    if selected(cell, "train" if train else "eval", "varied" if varied else "full",
                                "packed" if packed else "unpacked"):
                        bench(cell, train, varied, packed, args)


if __name__ == "__main__":
    main()
