"""Initialisations and backbone adjustments the official codes make."""

from __future__ import annotations

import math

from torch import nn


def normal_init(module: nn.Module, std: float = 0.01) -> nn.Module:
    """N(0, std²) weights and biases, as the official MatConvNet/TensorFlow code initialises heads."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.normal_(layer.bias, 0.0, std)
    return module


def tanh_head_std(input_dim: int, target: float = 0.7, hidden: int = 4096) -> float:
    """The N(0, s²) init of a tanh hash layer behind ``Linear(input_dim, hidden)`` (PyTorch's
    default init) and ReLU that gives pre-tanh outputs of standard deviation ``target`` on inputs
    standardised to unit variance per dimension.

    With fc1 weights and biases U(±1/√d) the ReLU'd hidden units have E[h²] = (‖x‖² + 1)/(6d), so
    the hash layer's output has variance s²·hidden·(d + 1)/(6d) for ‖x‖² = d (docs/methods/daph.md
    says why DAPH needs it on dense features).
    """
    return target / math.sqrt(hidden * (input_dim + 1) / (6 * input_dim))


def without_dropout(module: nn.Module) -> nn.Module:
    """Replace every dropout layer by the identity, in place: CNN-F (DCMH's and SSAH's backbone)
    has none, so the AlexNet stand-in must not add the two that torchvision's AlexNet carries."""
    for name, child in module.named_children():
        if isinstance(child, nn.Dropout):
            setattr(module, name, nn.Identity())
        else:
            without_dropout(child)
    return module
