#!/usr/bin/env python3
"""Writes nn/testdata/rnn_vectors.safetensors: PyTorch reference outputs and gradients for the
fused LSTM and GRU ops of package nn. Tooling only (the Go tests read the file, no Python):

  python3 scripts/gen_rnn_vectors.py

For each case (cell, layers, directions) it takes fixed random float32 weights (the module's
state_dict, PyTorch's names) and a fixed time-major input x (T, B, E) padded past uneven
lengths, runs torch.nn.LSTM / torch.nn.GRU over pack_padded_sequence(enforce_sorted=True),
and records:
  final  (B, dirs*H)    the last layer's final states: h_n[-1], or cat(h_n[-2], h_n[-1]) bi
  out    (T, B, dirs*H) pad_packed_sequence of the output (zeros on padding)
  gradA/<name>          gradients of lossA = sum(final * rf)
  gradB/<name>          gradients of lossB = sum(final * rf) + sum(out * rs)
for every parameter and for x. The inputs (x, weights, rf, rs) are stored as float32; the
references are computed in float64 from those same float32 values and stored as F64, so a
Go test can check its float32 path against them with a float32 tolerance and its float64
path almost exactly. Each case's configuration is in the file's metadata as JSON.
"""
import json
import os

import torch
from safetensors.torch import save_file
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

T, B, E, H = 7, 4, 5, 6
LENGTHS = [7, 5, 5, 2]

CASES = [
    ("lstm_uni1", "lstm", 1, False),
    ("lstm_bi2", "lstm", 2, True),
    ("gru_uni2", "gru", 2, False),
    ("gru_bi2", "gru", 2, True),
]


def run_case(name, cell, layers, bi, gen):
    dirs = 2 if bi else 1
    cls = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    mod = cls(E, H, num_layers=layers, bidirectional=bi)
    # Weights a little larger than the default U(-1/sqrt(H), 1/sqrt(H)), so that the gates
    # leave their linear range; rounded to float32 first.
    with torch.no_grad():
        for p in mod.parameters():
            p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * 0.5)
    x32 = torch.randn(T, B, E, generator=gen)
    for b, l in enumerate(LENGTHS):
        x32[l:, b] = 0  # padding is zero, as the models feed it
    rf32 = torch.randn(B, dirs * H, generator=gen)
    rs32 = torch.randn(T, B, dirs * H, generator=gen)

    mod64 = mod.double()
    tensors = {f"{name}/x": x32.clone(), f"{name}/rf": rf32.clone(), f"{name}/rs": rs32.clone()}
    for k, v in mod.state_dict().items():
        tensors[f"{name}/rnn.{k}"] = v.float().clone()

    lengths = torch.tensor(LENGTHS)
    for tag in ("A", "B"):
        mod64.zero_grad()
        x = x32.double().requires_grad_(True)
        packed = pack_padded_sequence(x, lengths, enforce_sorted=True)
        out_p, hn = mod64(packed)
        h = hn[0] if cell == "lstm" else hn
        final = torch.cat((h[-2], h[-1]), 1) if bi else h[-1]
        out, _ = pad_packed_sequence(out_p, total_length=T)
        loss = (final * rf32.double()).sum()
        if tag == "B":
            loss = loss + (out * rs32.double()).sum()
        loss.backward()
        if tag == "A":
            tensors[f"{name}/final"] = final.detach().clone()
            tensors[f"{name}/out"] = out.detach().clone()
        tensors[f"{name}/grad{tag}/x"] = x.grad.detach().clone()
        for k, p in mod64.named_parameters():
            tensors[f"{name}/grad{tag}/rnn.{k}"] = p.grad.detach().clone()
    names = [f"rnn.{k}" for k in mod.state_dict().keys()]
    return dict(cell=cell, input=E, hidden=H, layers=layers, bidirectional=bi, T=T,
                lengths=LENGTHS, params=names), tensors


def main():
    gen = torch.Generator().manual_seed(1234)
    tensors, meta = {}, {}
    for name, cell, layers, bi in CASES:
        cfg, ts = run_case(name, cell, layers, bi, gen)
        tensors.update({k: v.contiguous() for k, v in ts.items()})
        meta[name] = json.dumps(cfg)
    meta["cases"] = json.dumps([c[0] for c in CASES])
    meta["torch"] = torch.__version__
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "nn", "testdata")
    os.makedirs(here, exist_ok=True)
    path = os.path.join(here, "rnn_vectors.safetensors")
    save_file(tensors, path, metadata=meta)
    print(f"wrote {path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
