#!/usr/bin/env python3
"""Reference values for nn's softmax cross-entropy (nn/softmaxce.go), from PyTorch.

Writes nn/testdata/softmax_ce.json: for each case, a batch of logits (B x K, values exact in
float32, as the Go side stores them), the class ids, and what torch.nn.functional.cross_entropy
gives in float64: the mean loss, the per-example losses (reduction="none") and the gradient of
the mean with respect to the logits. The cases cover K = 2, 3 and 5, logits far in the tails
(+-100, 1000: a naive softmax overflows), equal logits, and the label on the largest and on the
smallest logit. nn's TestSoftmaxCrossEntropyParity compares the Go op, in float64 and in float32.

Needs torch (CPU is enough; the committed file came from torch 2.15.0, recorded in it).
Run from anywhere:  python3 scripts/gen_softmaxce_vectors.py
"""
import json
import os

import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "nn", "testdata", "softmax_ce.json")


def case(name, logits, labels):
    # Round the logits to float32 first, so that Go's float32 inputs are the same numbers.
    z = torch.tensor(logits, dtype=torch.float32).to(torch.float64).requires_grad_(True)
    y = torch.tensor(labels, dtype=torch.int64)
    loss = F.cross_entropy(z, y)
    per = F.cross_entropy(z, y, reduction="none")
    loss.backward()
    return {
        "name": name,
        "k": z.shape[1],
        "logits": z.detach().flatten().tolist(),
        "labels": labels,
        "loss": loss.item(),
        "per": per.detach().tolist(),
        "grad": z.grad.flatten().tolist(),
    }


def main():
    gen = torch.Generator().manual_seed(20)
    random5 = (torch.randn(8, 5, generator=gen) * 3).tolist()
    labels5 = torch.randint(0, 5, (8,), generator=gen).tolist()
    # The tails: one row with logits far apart (a naive exp overflows), one with all equal.
    random5[1] = [100.0, -100.0, 50.0, 0.0, 1000.0]
    labels5[1] = 2
    random5[2] = [0.25] * 5
    labels5[2] = 4
    random5[3] = [-1000.0, -1000.5, -999.0, -1003.0, -1000.0]
    labels5[3] = 3  # the smallest logit
    random3 = (torch.randn(4, 3, generator=gen) * 2).tolist()
    labels3 = [0, 2, 1, 2]
    cases = [
        case("k5", random5, labels5),
        case("k3", random3, labels3),
        case("k2", [[0.0, 1.5], [2.0, -3.0], [-30.0, 30.0]], [1, 1, 0]),
    ]
    with open(OUT, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT, REPO)} ({os.path.getsize(OUT):,} bytes)")


if __name__ == "__main__":
    main()
