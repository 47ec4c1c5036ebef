#!/usr/bin/env python3
"""Writes data/testdata/batches.json: torch_ref.py's own SplitMix64, bucket_batches and
eval_batches run on a fixed input, for data/batch_test.go.

Input: 1,000 examples with indices 0..999 in a scrambled order and lengths with many ties
(so that the stable sort matters); a generator seeded 1234 advanced by 3 draws (as a split
would). Output: the batches of two training epochs (batch size 8, so 800-example pools and a
short last pool and batch) drawn one after the other from the same generator, the generator's
state after them, and the eval batches (batch size 7).

Usage: python3 scripts/gen_batch_vectors.py [SHARED_DIR]   (default ../shared)
"""
import importlib.util
import json
import os
import sys


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared")
    spec = importlib.util.spec_from_file_location("torch_ref", os.path.join(shared, "bench", "torch_ref.py"))
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)

    n = 1000
    indices = [(i * 389) % n for i in range(n)]  # 389 is prime: a permutation of 0..999
    lengths = [1 + (i * 7919) % 37 for i in range(n)]  # 37 distinct lengths: many ties
    rng = ref.SplitMix64(1234)
    for _ in range(3):
        rng.next()
    epochs = [ref.bucket_batches(indices, lengths, 8, rng) for _ in range(2)]
    out = {
        "generator": "scripts/gen_batch_vectors.py",
        "indices": indices,
        "lengths": lengths,
        "seed": 1234,
        "skip": 3,
        "batch_size": 8,
        "epochs": epochs,
        "state_after": rng.state,
        "eval_batch_size": 7,
        "eval": ref.eval_batches(indices, lengths, 7),
    }
    dest = os.path.join(os.path.dirname(__file__), "..", "data", "testdata", "batches.json")
    with open(dest, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"{dest}: {os.path.getsize(dest):,} bytes")


if __name__ == "__main__":
    main()
