#!/usr/bin/env python3
"""Which hidden state of a frozen encoder carries the most sentiment? A linear probe, tooling only:

  python3 scripts/probe_encoder_layers.py --data ../shared/data/imdb/aclImdb_v1_labelled.tar.gz \
      --encoder DIR [--train 3000 --test 2000 --threads 2]

Takes a seeded sample of IMDB train and test reviews, runs the encoder (transformers, truncation to
512 word pieces, attention mask), mean- and max-pools every hidden state over the review
(output_hidden_states: 0 is the embeddings' output, i is layer i's), and fits a logistic
regression (scikit-learn, standardised features) per hidden state and for a few averages. Prints
the test accuracy of each. It chose sentibench's `--encoder-layers 4,5` for all-MiniLM-L6-v2 (see
the README): its last layer, tuned for sentence similarity, is the worst of its upper layers for
sentiment.
"""
import argparse
import random
import tarfile
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from transformers import AutoModel, AutoTokenizer


def read_imdb(path):
    train, test = [], []
    with tarfile.open(path) as tf:
        for m in tf:
            parts = m.name.split("/")
            if not m.isfile() or not m.name.endswith(".txt") or len(parts) < 4 or parts[-2] not in ("pos", "neg"):
                continue
            text = tf.extractfile(m).read().decode("utf-8")
            (train if parts[-3] == "train" else test).append((text, 1 if parts[-2] == "pos" else 0))
    return train, test


def pooled(tok, model, rows, batch=32):
    """[2 * hidden states, len(rows), H]: the masked mean of each hidden state, then the max."""
    out, t0 = [], time.time()
    for s in range(0, len(rows), batch):
        enc = tok([r[0] for r in rows[s:s + batch]], truncation=True, max_length=512, padding=True, return_tensors="pt")
        with torch.no_grad():
            hs = model(**enc, output_hidden_states=True).hidden_states
        m = enc["attention_mask"].unsqueeze(-1).float()
        means = [((h * m).sum(1) / m.sum(1)).numpy() for h in hs]
        maxes = [h.masked_fill(m == 0, -1e9).max(1).values.numpy() for h in hs]
        out.append(np.stack(means + maxes, 0))
        print(f"  {min(s + batch, len(rows))}/{len(rows)} reviews, {time.time() - t0:.0f} s", flush=True)
    return np.concatenate(out, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train, test = read_imdb(args.data)
    rng = random.Random(args.seed)
    rng.shuffle(train)
    rng.shuffle(test)
    train, test = train[:args.train], test[:args.test]
    tok, model = AutoTokenizer.from_pretrained(args.encoder), AutoModel.from_pretrained(args.encoder).eval()
    ftr, fte = pooled(tok, model, train), pooled(tok, model, test)
    ytr, yte = np.array([r[1] for r in train]), np.array([r[1] for r in test])

    def acc(xtr, xte):
        mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
        clf = LogisticRegression(max_iter=3000).fit((xtr - mu) / sd, ytr)
        return 100 * clf.score((xte - mu) / sd, yte)

    n = len(ftr) // 2
    print(f"logistic regression on {len(train)} train reviews, accuracy on {len(test)} test reviews:")
    for i in range(n):
        print(f"hidden state {i}: mean-pooled {acc(ftr[i], fte[i]):.2f}%, max-pooled {acc(ftr[n + i], fte[n + i]):.2f}%")
    for lo, hi in [(n - 3, n - 1), (n - 3, n), (n - 4, n)]:
        print(f"mean of hidden states {lo}..{hi - 1}, mean-pooled: {acc(ftr[lo:hi].mean(0), fte[lo:hi].mean(0)):.2f}%")


if __name__ == "__main__":
    main()
