"""Reference values for package distill's losses (distill/loss_test.go), from PyTorch.

Binary losses (one logit per example), printed (the Go test holds the numbers): the Hinton term
is computed as a two-class softmax KL divergence (torch.nn.functional.kl_div over the classes
[0, z/T]), an independent formulation of the Bernoulli KL that the Go code computes with
softplus; the hard term is binary_cross_entropy_with_logits.

K-class losses (K logits per example), written to distill/testdata/kclass_loss_ref.json: the
Hinton term is kl_div(log_softmax(z/T), softmax(t/T)) summed over the classes, times T^2; the
MSE term mse_loss(z, t, reduction="none") summed over the classes; the hard term cross_entropy
over the labelled examples; for each case the mean loss, the per-example losses and the
gradient of the mean with respect to the student's logits, in float64. Run:

    python3 scripts/distill_loss_ref.py
"""
import json
import math
import os

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

student = [1.5, -0.7, 0.2, 3.0, -2.5]
teacher = [2.0, -1.5, -0.375, 4.0, 0.25]  # exact in float32, as the Go side stores them
labels = [1.0, 0.0, math.nan, 1.0, math.nan]  # NaN: no label (soft term only)


def two_class(x):
    return torch.stack([torch.zeros_like(x), x], dim=-1)


def kd(T, alpha):
    z = torch.tensor(student, requires_grad=True)
    t = torch.tensor(teacher)
    y = torch.tensor(labels)
    lab = ~torch.isnan(y)
    log_q = F.log_softmax(two_class(z / T), dim=-1)
    p = F.softmax(two_class(t / T), dim=-1)
    soft = F.kl_div(log_q, p, reduction="none").sum(-1) * T * T
    hard = torch.zeros_like(z)
    hard[lab] = F.binary_cross_entropy_with_logits(z[lab], y[lab], reduction="none")
    per = alpha * hard + (1 - alpha) * soft
    loss = per.mean()
    loss.backward()
    return loss.item(), per.tolist(), z.grad.tolist()


def mse(alpha):
    z = torch.tensor(student, requires_grad=True)
    t = torch.tensor(teacher)
    y = torch.tensor(labels)
    lab = ~torch.isnan(y)
    hard = torch.zeros_like(z)
    hard[lab] = F.binary_cross_entropy_with_logits(z[lab], y[lab], reduction="none")
    per = alpha * hard + (1 - alpha) * (z - t) ** 2
    loss = per.mean()
    loss.backward()
    return loss.item(), per.tolist(), z.grad.tolist()


def show(name, r):
    loss, per, grad = r
    print(f"{name}: loss {loss!r}")
    print(f"  per  {per!r}")
    print(f"  grad {grad!r}")


show("kd T=2 alpha=0.3", kd(2.0, 0.3))
show("kd T=1 alpha=0", kd(1.0, 0.0))
show("kd T=4 alpha=0.5", kd(4.0, 0.5))
show("mse alpha=0", mse(0.0))
show("mse alpha=0.25", mse(0.25))


# K-class batches: logits exact in float32 (the Go side stores the teacher's as float32), some
# far apart, and unlabelled examples (NaN).
KCLASS = {
    "k3": {
        "student": [[1.5, -0.7, 0.2], [3.0, -2.5, 0.0], [0.25, 0.25, 0.25], [-1.0, 4.0, 2.0], [10.0, -10.0, 0.5]],
        "teacher": [[2.0, -1.5, -0.375], [4.0, 0.25, -1.0], [-3.0, 1.0, 0.5], [0.0, 0.0, 0.0], [-20.0, 30.0, 1.0]],
        "labels": [0, 2, math.nan, 1, math.nan],
    },
    "k5": {
        "student": [[0.5, -1.25, 2.0, 0.0, 3.5], [-2.0, 1.0, 0.75, -0.5, 1.5], [6.0, -6.0, 0.125, 2.5, -1.0],
                    [800.0, -800.0, 0.0, 1.0, 2.0]],
        "teacher": [[1.0, -2.0, 2.5, 0.5, 3.0], [0.0, 0.0, 4.0, -4.0, 1.0], [-1.5, 2.0, 0.0, 3.25, -0.75],
                    [-700.0, 700.0, 3.0, 0.0, 0.0]],
        "labels": [4, math.nan, 3, 1],
    },
}


def kclass(batch, loss, T, alpha):
    z = torch.tensor(batch["student"], requires_grad=True)
    t = torch.tensor(batch["teacher"])
    y = torch.tensor(batch["labels"])
    lab = ~torch.isnan(y)
    if loss == "kd":
        soft = F.kl_div(F.log_softmax(z / T, dim=-1), F.softmax(t / T, dim=-1), reduction="none").sum(-1) * T * T
    else:
        soft = F.mse_loss(z, t, reduction="none").sum(-1)
    hard = torch.zeros(z.shape[0])
    hard[lab] = F.cross_entropy(z[lab], y[lab].long(), reduction="none")
    per = alpha * hard + (1 - alpha) * soft
    mean = per.mean()
    mean.backward()
    return {"loss": mean.item(), "per": per.tolist(), "grad": z.grad.flatten().tolist()}


def write_kclass():
    cases = []
    for name, batch in KCLASS.items():
        for loss, T, alpha in (("kd", 2.0, 0.3), ("kd", 1.0, 0.0), ("kd", 4.0, 0.5), ("kd", 3.0, 1.0),
                               ("mse", 1.0, 0.0), ("mse", 1.0, 0.25)):
            ref = kclass(batch, loss, T, alpha)
            cases.append({"batch": name, "loss_kind": loss, "t": T, "alpha": alpha,
                          "student": sum(batch["student"], []), "teacher": sum(batch["teacher"], []),
                          "labels": [None if math.isnan(v) else v for v in batch["labels"]],
                          "k": len(batch["student"][0]), **ref})
    out = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "distill", "testdata", "kclass_loss_ref.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, indent=1)
        f.write("\n")
    print(f"wrote {out}")


write_kclass()
