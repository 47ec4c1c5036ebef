"""Reference values for package distill's losses (distill/loss_test.go), from PyTorch.

The Hinton term is computed as a two-class softmax KL divergence (torch.nn.functional.kl_div
over the classes [0, z/T]), an independent formulation of the Bernoulli KL that the Go code
computes with softplus; the hard term is binary_cross_entropy_with_logits. Run:

    python3 scripts/distill_loss_ref.py
"""
import math

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
