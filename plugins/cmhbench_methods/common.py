"""Small pieces shared by the built-in methods."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from cmhbench.encoders.base import Encoder


def log_uniform_schedule(start: float, end: float, epochs: int) -> list[float]:
    """``numpy.logspace(log10(start), log10(end), epochs)``: the DCMH/SSAH learning-rate decay."""
    if epochs <= 1:
        return [start] * max(epochs, 1)
    a, b = math.log10(start), math.log10(end)
    return [10 ** (a + (b - a) * i / (epochs - 1)) for i in range(epochs)]


def similarity(labels_a: torch.Tensor, labels_b: torch.Tensor) -> torch.Tensor:
    """S_ij = 1 when items i and j share at least one label, else 0 (float)."""
    return (labels_a @ labels_b.T > 0).float()


def normal_init(module: nn.Module, std: float = 0.01) -> nn.Module:
    """N(0, std²) weights and biases, as the official MatConvNet/TensorFlow code initialises heads."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.normal_(layer.bias, 0.0, std)
    return module


def is_feature_encoder(encoder: Encoder) -> bool:
    """True when the image side is a feature vector (identity encoder) rather than a CNN."""
    return encoder.__class__.__name__ == "IdentityEncoder"


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def module_state(modules: dict[str, Any]) -> dict[str, Any]:
    return {name: m.state_dict() for name, m in modules.items()}
