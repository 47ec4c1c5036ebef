#!/usr/bin/env python3
"""Writes a BERT with random weights and bert-base-uncased's shape (12 layers, hidden 768, 12
heads, intermediate 3072) in Hugging Face layout, with the real bert-base-uncased vocabulary
from ../shared/models/bert-base-uncased-vocab.

For timing only: the arithmetic of a forward pass depends on the shape, not the weights, so this
stands in for bert-base (the seed's encoder) where its weights cannot be downloaded, e.g. to
measure what the feature cache saves for an encoder of that size. Its features mean nothing.

    python3 scripts/make_random_bert.py OUT_DIR [--shared DIR]
"""
import argparse
import os
import shutil

import torch
from transformers import BertConfig, BertModel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--shared", default=os.environ.get("SENTIBENCH_SHARED") or os.path.join(os.path.dirname(REPO), "shared"))
    args = ap.parse_args()
    torch.manual_seed(0)
    model = BertModel(BertConfig())  # bert-base-uncased's defaults
    model.save_pretrained(args.out, safe_serialization=True)
    vocab = os.path.join(args.shared, "models", "bert-base-uncased-vocab")
    for f in ("vocab.txt", "tokenizer.json"):
        shutil.copy(os.path.join(vocab, f), os.path.join(args.out, f))
    print(f"wrote {args.out}: {sum(p.numel() for p in model.parameters()):,} random parameters")


if __name__ == "__main__":
    main()
