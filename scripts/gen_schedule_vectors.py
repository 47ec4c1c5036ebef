#!/usr/bin/env python3
"""Reference learning rates for nn's schedules (nn/schedule.go), from transformers itself.

Writes nn/testdata/schedules.json: for each case, the learning rate that
transformers.get_scheduler gives a torch optimiser at each optimiser step (param_groups[0]["lr"]
before step k, after k calls of scheduler.step(), as the Hugging Face Trainer steps them), for
every schedule sentibench offers, without warmup, with warmup steps and with a warmup ratio
(resolved to steps by transformers' TrainingArguments.get_warmup_steps), a few steps past the
end of training. nn's TestScheduleMatchesTransformers compares every step within 1e-7 relative.

Also writes nn/testdata/adamw.safetensors: torch.optim.AdamW over 6 steps on two small
parameters from fixed gradients, without a schedule and with a linear warmup-and-decay schedule
from get_scheduler (the weight decay uses the scheduled rate), for nn's TestAdamWParity.

Needs torch, transformers, safetensors, and accelerate (TrainingArguments needs it):
pip install --target DIR torch transformers safetensors accelerate psutil (CPU is enough; the
committed files came from torch 2.15.0 and transformers 5.25.0, recorded in them).
Run from anywhere:  PYTHONPATH=DIR python3 scripts/gen_schedule_vectors.py
"""
import json
import os
import tempfile

import torch
import transformers
from safetensors.torch import save_file
from transformers import TrainingArguments, get_scheduler

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "nn", "testdata")

# sentibench's schedule names and transformers' (the constant rate with a warmup is
# transformers' constant_with_warmup).
HF_NAMES = {
    "constant": "constant",
    "linear": "linear",
    "cosine": "cosine",
    "cosine-restarts": "cosine_with_restarts",
    "polynomial": "polynomial",
}


def warmup_steps_for(ratio, training_steps):
    """The warmup steps that the Hugging Face Trainer resolves a warmup ratio to (transformers 5
    takes the ratio as a warmup_steps below 1; earlier versions as warmup_ratio)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            args = TrainingArguments(output_dir=tmp, warmup_ratio=ratio, report_to="none")
        except TypeError:
            args = TrainingArguments(output_dir=tmp, warmup_steps=ratio, report_to="none")
        return args.get_warmup_steps(training_steps)


def rates(kind, base_lr, training_steps, warmup_steps, extra_steps, specific):
    name = HF_NAMES[kind]
    if kind == "constant" and warmup_steps > 0:
        name = "constant_with_warmup"
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=base_lr)
    sched = get_scheduler(name, opt, num_warmup_steps=warmup_steps, num_training_steps=training_steps,
                          scheduler_specific_kwargs=specific or None)
    out = []
    for _ in range(training_steps + extra_steps):
        out.append(opt.param_groups[0]["lr"])
        param.grad = torch.ones(1)
        opt.step()
        sched.step()
    return name, out


def gen_schedules():
    cases = []
    variants = {
        "constant": [{}],
        "linear": [{}],
        "cosine": [{}, {"num_cycles": 2.0}],
        "cosine-restarts": [{}, {"num_cycles": 3}],
        "polynomial": [{}, {"power": 2.0, "lr_end": 1e-5}],
    }
    training_steps = 50
    for kind, specifics in variants.items():
        for specific in specifics:
            for warm_label, warmup_steps, warmup_ratio in (("no warmup", 0, 0.0), ("warmup 7", 7, 0.0), ("warmup ratio 0.062", 0, 0.062)):
                base_lr = 2e-5 if kind == "linear" else 1e-3
                resolved = warmup_steps if warmup_ratio == 0 else warmup_steps_for(warmup_ratio, training_steps)
                hf_name, lrs = rates(kind, base_lr, training_steps, resolved, 5, specific)
                cases.append({
                    "name": f"{kind} {json.dumps(specific)} {warm_label}",
                    "hf_name": hf_name,
                    "kind": kind,
                    "base_lr": base_lr,
                    "training_steps": training_steps,
                    "warmup_steps": warmup_steps,
                    "warmup_ratio": warmup_ratio,
                    "resolved_warmup_steps": resolved,
                    "cycles": float(specific.get("num_cycles", 0)),
                    "power": specific.get("power", 0.0),
                    "lr_end": specific.get("lr_end", 0.0),
                    "lrs": lrs,
                })
    doc = {"transformers": transformers.__version__, "torch": torch.__version__, "cases": cases}
    with open(os.path.join(OUT, "schedules.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def gen_adamw():
    gen = torch.Generator().manual_seed(22)
    shapes = {"a.weight": (4, 3), "a.bias": (5,)}
    init = {n: torch.randn(s, generator=gen) for n, s in shapes.items()}
    steps = 6
    grads = [{n: torch.randn(s, generator=gen) * (k + 1) for n, s in shapes.items()} for k in range(steps)]
    t = {}
    for n in shapes:
        t["init." + n] = init[n]
        for k in range(steps):
            t[f"grad{k}.{n}"] = grads[k][n]
    for tag, kw, schedule in (
        ("plain", {"weight_decay": 0.01}, None),
        ("sched", {"lr": 3e-2, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}, ("linear", 2)),
    ):
        params = {n: torch.nn.Parameter(init[n].clone()) for n in shapes}
        opt = torch.optim.AdamW(list(params.values()), **kw)
        sched = None
        if schedule:
            sched = get_scheduler(schedule[0], opt, num_warmup_steps=schedule[1], num_training_steps=steps)
        lrs = []
        for k in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            for n, p in params.items():
                p.grad = grads[k][n].clone()
            opt.step()
            if sched:
                sched.step()
            for n, p in params.items():
                t[f"{tag}.step{k}.{n}"] = p.detach().clone()
        t[f"{tag}.lr"] = torch.tensor(lrs, dtype=torch.float64)
        for n, p in params.items():
            st = opt.state[p]
            t[f"{tag}.exp_avg.{n}"] = st["exp_avg"]
            t[f"{tag}.exp_avg_sq.{n}"] = st["exp_avg_sq"]
    save_file({k: v.contiguous() for k, v in t.items()}, os.path.join(OUT, "adamw.safetensors"),
              metadata={"torch": torch.__version__, "transformers": transformers.__version__})


if __name__ == "__main__":
    gen_schedules()
    gen_adamw()
