"""Learning-rate schedules."""

from __future__ import annotations

import math

import torch


def log_uniform_schedule(start: float, end: float, epochs: int) -> list[float]:
    """``numpy.logspace(log10(start), log10(end), epochs)``: the DCMH/SSAH learning-rate decay."""
    if epochs <= 1:
        return [start] * max(epochs, 1)
    a, b = math.log10(start), math.log10(end)
    return [10 ** (a + (b - a) * i / (epochs - 1)) for i in range(epochs)]


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Every parameter group of ``optimizer`` at rate ``lr``."""
    for group in optimizer.param_groups:
        group["lr"] = lr
