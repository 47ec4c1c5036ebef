#!/usr/bin/env python3
"""Reference vectors for package nn's parity tests, computed with PyTorch (CPU, float32).

Writes small safetensors files under nn/testdata/ (the Go tests read them; they need no Python):

  embedding_op.safetensors  embedding lookup, batch-major and time-major, and its weight gradient
  cnn_op.safetensors        embedding -> Conv1d 3/4/5 -> ReLU -> masked max -> cat, as torch_ref's
                            CNNClassifier, with every gradient of sum(pooled * R)
  linear.safetensors        nn.Linear forward and gradients
  bce.safetensors           BCEWithLogitsLoss (mean and per-example) and its gradient
  adam.safetensors          torch.optim.Adam over 5 steps (default and with weight decay), and
                            clip_grad_norm_
  cnn_model_init.safetensors  a small CNNClassifier's state_dict (a PyTorch-written checkpoint)
  cnn_model_steps.safetensors 5 batches, the loss of each of 5 Adam training steps, the logits of
                            the initial model, the weights after the steps
  lstm_model_*.safetensors  the same for a small LSTMClassifier
  bigru_model_*.safetensors the same for a small GRUHead over random features
  bigru_concat_model_*.safetensors  the same for the GRUHead with concat pooling (sentibench's
                            --pool concat: final states, mean and max over the true length)

It also checks the other direction: nn/testdata/go_cnn_model.safetensors, written by the Go
test TestWriteGoCheckpoint (go test ./nn -run WriteGoCheckpoint -update), must load into
torch_ref's CNNClassifier with load_state_dict(strict=True) and give the logits Go recorded.

Run from anywhere:  python3 scripts/gen_nn_vectors.py [--shared DIR]
(DIR holds bench/torch_ref.py; default $SENTIBENCH_SHARED, else ../shared beside the repository).
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "nn", "testdata")
PAD = 1


def save(name, tensors, meta=None):
    """Writes the tensors; meta goes in as one JSON string (key "meta"), so the bytes are stable."""
    path = os.path.join(OUT, name)
    meta = {"meta": json.dumps(meta, sort_keys=True)} if meta else None
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, path, metadata=meta)
    print(f"wrote {os.path.relpath(path, REPO)} ({os.path.getsize(path):,} bytes)")


def batch_ids(gen, vocab, lengths, min_len=1):
    """Batch-major ids [B, T] padded with PAD, no PAD inside the true lengths."""
    T = max(max(lengths), min_len)
    x = torch.full((len(lengths), T), PAD, dtype=torch.int64)
    for b, n in enumerate(lengths):
        ids = torch.randint(2, vocab, (n,), generator=gen)
        ids[torch.rand(n, generator=gen) < 0.15] = 0  # some <unk>
        x[b, :n] = ids
    return x


def cnn_pooled(model, x, lengths):
    """CNNClassifier.forward up to the concatenation (torch_ref.py, verbatim apart from the end)."""
    embedded = model.embedding(x).permute(0, 2, 1)
    eff = lengths.clamp(min=model.MIN_LEN)
    pooled = []
    for conv in model.convs:
        c = F.relu(conv(embedded))
        valid = eff - conv.kernel_size[0] + 1
        mask = torch.arange(c.size(2))[None, :] >= valid[:, None]
        pooled.append(c.masked_fill(mask[:, None, :], float("-inf")).max(dim=2).values)
    return torch.cat(pooled, dim=1)


def gen_embedding(tr):
    gen = torch.Generator().manual_seed(11)
    V, E = 23, 5
    lengths = torch.tensor([7, 6, 4, 2])
    x = batch_ids(gen, V, lengths.tolist())
    emb = torch.nn.Embedding(V, E, padding_idx=PAD)
    with torch.no_grad():
        emb.weight.copy_(torch.randn(V, E, generator=gen))
        emb.weight[PAD].zero_()
    B, T = x.shape
    out_bm = emb(x).reshape(B * T, E)  # row b*T+t
    out_tm = emb(x).transpose(0, 1).reshape(T * B, E)  # row t*B+b
    r_bm = torch.randn(B * T, E, generator=gen)
    r_tm = torch.randn(T * B, E, generator=gen)
    (out_bm * r_bm).sum().backward()
    g_bm = emb.weight.grad.clone()
    emb.weight.grad = None
    (out_tm * r_tm).sum().backward()
    g_tm = emb.weight.grad.clone()
    save("embedding_op.safetensors", {
        "ids": x.to(torch.int64), "lengths": lengths.to(torch.int64), "weight": emb.weight,
        "out_bm": out_bm, "out_tm": out_tm, "r_bm": r_bm, "r_tm": r_tm, "grad_bm": g_bm, "grad_tm": g_tm})


def gen_cnn_op(tr):
    torch.manual_seed(12)
    gen = torch.Generator().manual_seed(12)
    V, E, Fn = 30, 6, 4
    model = tr.CNNClassifier(V, 0.0, emb=E, filters=Fn)
    lengths = torch.tensor([11, 8, 5, 3, 1])
    x = batch_ids(gen, V, lengths.tolist(), min_len=5)
    pooled = cnn_pooled(model, x, lengths)
    R = torch.randn(pooled.shape, generator=gen)
    (pooled * R).sum().backward()
    t = {"ids": x, "lengths": lengths, "pooled": pooled, "R": R}
    for name, p in model.named_parameters():
        if name.startswith("fc."):
            continue
        t[name] = p
        t["grad." + name] = p.grad
    save("cnn_op.safetensors", t, {"vocab": V, "dim": E, "filters": Fn})


def gen_linear():
    gen = torch.Generator().manual_seed(13)
    lin = torch.nn.Linear(7, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(3, 7, generator=gen))
        lin.bias.copy_(torch.randn(3, generator=gen))
    x = torch.randn(5, 7, generator=gen, requires_grad=True)
    y = lin(x)
    R = torch.randn(5, 3, generator=gen)
    (y * R).sum().backward()
    save("linear.safetensors", {"x": x, "weight": lin.weight, "bias": lin.bias, "y": y, "R": R,
                                "grad.x": x.grad, "grad.weight": lin.weight.grad, "grad.bias": lin.bias.grad})


def gen_bce():
    z = torch.tensor([-100.0, -30.0, -2.0, -0.1, 0.0, 0.5, 3.0, 30.0, 100.0, 1e-3], requires_grad=True)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.3, 0.0, 1.0, 0.0, 1.0])
    loss = F.binary_cross_entropy_with_logits(z, y)
    per = F.binary_cross_entropy_with_logits(z, y, reduction="none")
    loss.backward()
    save("bce.safetensors", {"logits": z, "targets": y, "loss": loss.reshape(1), "per": per, "grad": z.grad})


def gen_adam():
    gen = torch.Generator().manual_seed(14)
    t = {}
    shapes = {"a.weight": (4, 3), "a.bias": (5,)}
    init = {n: torch.randn(s, generator=gen) for n, s in shapes.items()}
    grads = [{n: torch.randn(s, generator=gen) * (k + 1) for n, s in shapes.items()} for k in range(5)]
    for n in shapes:
        t["init." + n] = init[n]
        for k in range(5):
            t[f"grad{k}.{n}"] = grads[k][n]
    for tag, kw in (("default", {}), ("wd", {"lr": 3e-3, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01})):
        params = {n: torch.nn.Parameter(init[n].clone()) for n in shapes}
        opt = torch.optim.Adam(list(params.values()), **kw)
        for k in range(5):
            for n, p in params.items():
                p.grad = grads[k][n].clone()
            opt.step()
            for n, p in params.items():
                t[f"{tag}.step{k}.{n}"] = p.detach().clone()
        for n, p in params.items():
            st = opt.state[p]
            t[f"{tag}.exp_avg.{n}"] = st["exp_avg"]
            t[f"{tag}.exp_avg_sq.{n}"] = st["exp_avg_sq"]
    # clip_grad_norm_ on the first gradients.
    params = [torch.nn.Parameter(init[n].clone()) for n in shapes]
    for p, n in zip(params, shapes):
        p.grad = grads[0][n].clone()
    norm = torch.nn.utils.clip_grad_norm_(params, 0.5)
    t["clip.norm"] = norm.reshape(1)
    for p, n in zip(params, shapes):
        t["clip." + n] = p.grad
    save("adam.safetensors", t)


def concat_head(tr):
    """torch_ref's GRUHead with concat pooling, as nn.GRUClassifier with Pool = concat."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    class ConcatGRUHead(tr.GRUHead):
        def __init__(self, in_dim, p, hidden, layers):
            super().__init__(in_dim, p, hidden=hidden, layers=layers)
            self.fc = torch.nn.Linear(6 * hidden, 1)

        def forward(self, feats, lengths):
            packed = pack_padded_sequence(feats, lengths, batch_first=True, enforce_sorted=True)
            out, h = self.rnn(packed)
            seq, _ = pad_packed_sequence(out, batch_first=True)  # [B, T, 2H], zero padding
            valid = torch.arange(seq.size(1))[None, :, None] < lengths[:, None, None]
            mean = seq.sum(1) / lengths[:, None].to(seq.dtype)
            mx = seq.masked_fill(~valid, float("-inf")).max(1).values
            return self.fc(self.dropout(torch.cat((h[-2], h[-1], mean, mx), dim=1))).squeeze(1)

    return ConcatGRUHead


def train_steps(model, batches, steps):
    """Adam (recipe settings) on the batches in turn; returns the loss before each step."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)
    crit = torch.nn.BCEWithLogitsLoss()
    model.train()
    losses = []
    for k in range(steps):
        x, lengths, y = batches[k % len(batches)]
        opt.zero_grad()
        loss = crit(model(x, lengths), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return torch.tensor(losses, dtype=torch.float64)


def gen_model(tr, kind):
    torch.manual_seed(15 if kind == "cnn" else 16)
    gen = torch.Generator().manual_seed(15)
    V = 40
    if kind == "cnn":
        model = tr.CNNClassifier(V, 0.0, emb=16, filters=8)
        meta = {"vocab": V, "dim": 16, "filters": 8}
        min_len = tr.CNNClassifier.MIN_LEN
        all_lengths = [[9, 9, 7, 6, 4, 1], [4, 2, 1], [12, 10, 10, 5, 3, 2, 2]]
    elif kind == "lstm":
        model = tr.LSTMClassifier(V, 0.0, emb=12, hidden=10, layers=2)
        meta = {"vocab": V, "dim": 12, "hidden": 10, "layers": 2}
        min_len = 1
        all_lengths = [[9, 9, 7, 6, 4, 1], [4, 2, 1], [12, 10, 10, 5, 3, 2, 2]]
    elif kind == "bigru_concat":
        model = concat_head(tr)(12, 0.0, hidden=10, layers=2)
        meta = {"input": 12, "hidden": 10, "layers": 2}
        min_len = 1
        all_lengths = [[9, 9, 7, 6, 4, 1], [4, 2, 1], [12, 10, 10, 5, 3, 2, 2]]
    else:  # bigru: the GRU head over (frozen) features
        model = tr.GRUHead(12, 0.0, hidden=10, layers=2)
        meta = {"input": 12, "hidden": 10, "layers": 2}
        min_len = 1
        all_lengths = [[9, 9, 7, 6, 4, 1], [4, 2, 1], [12, 10, 10, 5, 3, 2, 2]]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    save(f"{kind}_model_init.safetensors", state, meta)
    batches = []
    t = {}
    for i, lengths in enumerate(all_lengths):
        lengths = torch.tensor(lengths)
        y = (torch.rand(len(lengths), generator=gen) < 0.5).float()
        t[f"batch{i}.lengths"], t[f"batch{i}.labels"] = lengths, y
        if kind.startswith("bigru"):
            B, T = len(lengths), int(lengths.max())
            feats = torch.randn(B, T, 12, generator=gen)
            feats[torch.arange(T)[None, :] >= lengths[:, None]] = 0  # zero padding, as Input.Feats
            batches.append((feats, lengths, y))
            t[f"batch{i}.feats"] = feats.transpose(0, 1).reshape(T * B, 12)  # time-major
            continue
        x = batch_ids(gen, V, lengths.tolist(), min_len=1)  # Go pads the cnn's short batches itself
        xm = x if x.size(1) >= min_len else F.pad(x, (0, min_len - x.size(1)), value=PAD)
        batches.append((xm, lengths, y))
        t[f"batch{i}.ids"] = x
    model.eval()
    with torch.no_grad():
        for i, (x, lengths, _) in enumerate(batches):
            t[f"batch{i}.logits"] = model(x, lengths)
    t["losses"] = train_steps(model, batches, 5)
    for k, v in model.state_dict().items():
        t["final." + k] = v
    save(f"{kind}_model_steps.safetensors", t, meta)


def check_go_checkpoint(tr):
    path = os.path.join(OUT, "go_cnn_model.safetensors")
    if not os.path.exists(path):
        print(f"note: {os.path.relpath(path, REPO)} not found; run the Go test TestWriteGoCheckpoint with -update")
        return
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    cfg = json.loads(meta["config"])
    batch = json.loads(meta["batch"])
    model = tr.CNNClassifier(cfg["vocab_size"], cfg["dropout"], emb=cfg["embedding_dim"], filters=cfg["filters"],
                             widths=tuple(cfg["widths"]))
    model.load_state_dict(load_file(path), strict=True)
    model.eval()
    x = torch.tensor(batch["ids"], dtype=torch.int64).reshape(len(batch["lengths"]), -1)
    with torch.no_grad():
        logits = model(x, torch.tensor(batch["lengths"]))
    want = torch.tensor(batch["logits"])
    diff = (logits - want).abs().max().item()
    if diff > 1e-5:
        sys.exit(f"error: Go checkpoint {path}: PyTorch logits differ from Go's by {diff:g}")
    print(f"checked {os.path.relpath(path, REPO)}: load_state_dict(strict=True) accepted it; "
          f"logits match Go's within {diff:.2g}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_shared = os.environ.get("SENTIBENCH_SHARED") or os.path.join(os.path.dirname(REPO), "shared")
    ap.add_argument("--shared", default=default_shared, help="folder holding bench/torch_ref.py")
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.shared, "bench"))
    import torch_ref as tr  # the reference models, as the recipe defines them

    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    print(f"torch {torch.__version__}")
    gen_embedding(tr)
    gen_cnn_op(tr)
    gen_linear()
    gen_bce()
    gen_adam()
    gen_model(tr, "cnn")
    gen_model(tr, "lstm")
    gen_model(tr, "bigru")
    gen_model(tr, "bigru_concat")
    check_go_checkpoint(tr)


if __name__ == "__main__":
    main()
