#!/usr/bin/env python3
"""Writes internal/safetensors/testdata/py.safetensors with Hugging Face's own `safetensors`
package, so the Go reader is tested against the reference writer. Tooling only:
  python3 scripts/gen_safetensors_fixture.py
"""
import os
import torch
from safetensors.torch import save_file

here = os.path.join(os.path.dirname(__file__), "..", "internal", "safetensors", "testdata")
t = {
    "a.f32": torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4 - 0.5,
    "b.f16": torch.tensor([1.0, -2.5, 65504.0, 6e-8, 0.0], dtype=torch.float16),
    "c.bf16": torch.tensor([1.0, -3.140625, 1e30], dtype=torch.bfloat16),
    "d.i64": torch.tensor([[1, -2], [3, 1 << 40]], dtype=torch.int64),
    "scalar": torch.tensor(7.0, dtype=torch.float32),
}
save_file(t, os.path.join(here, "py.safetensors"), metadata={"format": "pt"})
