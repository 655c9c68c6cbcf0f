"""Small pieces shared by the built-in methods."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from cmhbench.encoders.base import Encoder
from cmhbench.encoders.identity import IdentityEncoder
from cmhbench.method import to_codes


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


def tanh_head_std(input_dim: int, target: float = 0.7, hidden: int = 4096) -> float:
    """The N(0, s²) init of a tanh hash layer behind ``Linear(input_dim, hidden)`` (PyTorch's
    default init) and ReLU that gives pre-tanh outputs of standard deviation ``target`` on inputs
    standardised to unit variance per dimension.

    With fc1 weights and biases U(±1/√d) the ReLU'd hidden units have E[h²] = (‖x‖² + 1)/(6d), so
    the hash layer's output has variance s²·hidden·(d + 1)/(6d) for ‖x‖² = d. DAPH's official
    N(0, 0.3²) gives about 0.6-0.7 on its sparse bags of words but 7.9 on standardised dense
    features, where four in five tanh units saturate and stage 2 barely learns; 0.7 is the
    official regime.
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


def is_feature_encoder(encoder: Encoder) -> bool:
    """True when the image side is a feature vector (identity encoder) rather than a CNN."""
    return isinstance(encoder, IdentityEncoder)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def module_state(modules: dict[str, Any]) -> dict[str, Any]:
    return {name: m.state_dict() for name, m in modules.items()}


class InputNormaliser:
    """Train-split input statistics: texts are centred (DCMH's ``normZeroMean``) unless
    ``centre_bow`` is off (DAPH and SSAH feed raw bags of words); feature inputs (image features,
    text features such as LDA topics) are centred and scaled to unit variance
    (``normEqualVariance``); pixels are left to the backbone."""

    def __init__(self, device: torch.device, feature_image: bool, feature_text: bool, centre_bow: bool = True):
        self.feature = {"image": feature_image, "text": feature_text}
        self.centre_bow = centre_bow
        self.shift = {m: torch.zeros(1, device=device) for m in ("image", "text")}
        self.scale = {m: torch.ones(1, device=device) for m in ("image", "text")}

    def fit(self, train) -> None:
        for modality in ("text", "image"):
            if modality == "image" and not self.feature["image"]:
                continue
            if modality == "text" and not self.feature["text"] and not self.centre_bow:
                continue
            total = square = None
            for batch in train.batches(4096, modalities=(modality,)):
                x = (batch.texts if modality == "text" else batch.images).double()
                total = x.sum(0) if total is None else total + x.sum(0)
                square = (x * x).sum(0) if square is None else square + (x * x).sum(0)
            mean = total / len(train)
            self.shift[modality] = mean.float()
            if self.feature[modality]:
                std = (square / len(train) - mean * mean).clamp(min=0).sqrt()
                self.scale[modality] = torch.where(std > 1e-8, std, torch.ones_like(std)).float()

    def __call__(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        if modality == "image" and not self.feature["image"]:
            return x  # pixels: the backbone normalises them
        return (x.float() - self.shift[modality]) / self.scale[modality]

    def state_dict(self) -> dict[str, Any]:
        return {"shift": self.shift, "scale": self.scale}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.shift = {m: t.to(device) for m, t in state["shift"].items()}
        self.scale = {m: t.to(device) for m, t in state["scale"].items()}


class TwoNetworkCodes:
    """``encode_image``/``encode_text`` for methods with ``image_net``, ``text_net`` (ending in the
    hash layer) and an `InputNormaliser` called ``normalise``."""

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        self.image_net.eval()
        return to_codes(self.image_net(self.normalise(images, "image")).float())

    def encode_text(self, texts: torch.Tensor) -> torch.Tensor:
        self.text_net.eval()
        return to_codes(self.text_net(self.normalise(texts, "text")).float())
