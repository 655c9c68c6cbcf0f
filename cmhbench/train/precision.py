"""The numeric precision of a run, decided once."""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("auto", "bf16", "fp32")


def resolve_precision(requested: str, cuda_precision: str, device: torch.device) -> str:
    """``auto``: the method's ``cuda_precision`` on a GPU, fp32 on the CPU; else what was asked."""
    if requested == "auto":
        return cuda_precision if device.type == "cuda" else "fp32"
    return requested


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast for a bf16 run (on the CPU only when asked for, which is how the tests exercise
    a GPU run's precision path); else a no-op."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
