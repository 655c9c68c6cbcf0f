"""DAPH's networks: the proxy branches and class proxy generator of stage 1, the hash nets of stage 2.

Feature inputs (no backbone) get stand-ins for the backbone's layers, all in `image_proxy_body` and
`image_hash_net` (docs/methods/daph.md, "Hash-layer initialisation and the pre-tanh scale").
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from cmhbench.method import MethodSetup
from cmhbench.toolkit import tanh_head_std


def normalised_mlp(input_dim: int, dropout: float, output: int = 512, init_std: float | None = None) -> nn.Sequential:
    last = nn.Linear(4096, output)
    if init_std is not None:
        nn.init.normal_(last.weight, 0.0, init_std)
    return nn.Sequential(nn.Linear(input_dim, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout), last)


def text_hash_net(input_dim: int, bits: int, head_std: float) -> nn.Sequential:
    """input -> 4096 (ReLU, dropout 0.2) -> K (N(0, head_std²)) -> tanh."""
    last = nn.Linear(4096, bits)
    nn.init.normal_(last.weight, 0.0, head_std)
    return nn.Sequential(nn.Linear(input_dim, 4096), nn.ReLU(inplace=True), nn.Dropout(0.2), last, nn.Tanh())


class LabelBranch(nn.Module):
    """Multi-hot labels -> 512 (ReLU, dropout 0.1) -> 512, normalised."""

    def __init__(self, num_labels: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(num_labels, 512), nn.ReLU(inplace=True), nn.Dropout(0.1), nn.Linear(512, 512))

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(labels))


class ProxyBranch(nn.Module):
    """One modality's proxy generator: normalise(linear_K(normalise(f(x)) + label branch(y)))."""

    def __init__(self, body: nn.Module, num_labels: int, bits: int):
        super().__init__()
        self.body, self.labels, self.head = body, LabelBranch(num_labels), nn.Linear(512, bits)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(F.normalize(self.body(x)) + self.labels(labels)))


class ClassProxyGenerator(nn.Module):
    """One-hot class -> 4096 (ReLU, dropout 0.2) -> K, normalised; weights N(0, 0.2²) as the code."""

    def __init__(self, num_labels: int, bits: int):
        super().__init__()
        first, last = nn.Linear(num_labels, 4096), nn.Linear(4096, bits)
        nn.init.normal_(first.weight, 0.0, 0.2)
        nn.init.normal_(last.weight, 0.0, 0.2)
        self.net = nn.Sequential(first, nn.ReLU(inplace=True), nn.Dropout(0.2), last)

    def forward(self, onehot: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(onehot))


def image_proxy_body(setup: MethodSetup) -> nn.Sequential:
    """Stage 1's image body on its own copy of the (untrained) backbone, as the code builds two
    AlexNets: backbone -> 512; on features, the text branch's structure."""
    encoder, width = copy.deepcopy(setup.image_encoder), setup.image_encoder.out_dim
    if "image" in setup.features_in:
        return nn.Sequential(encoder, normalised_mlp(width, 0.5, init_std=0.3))
    return nn.Sequential(encoder, nn.Linear(width, 512))


def image_hash_net(setup: MethodSetup) -> nn.Sequential:
    """Stage 2's image net: backbone -> K -> tanh; on features, the text net's structure with the
    official pre-tanh scale."""
    width, bits = setup.image_encoder.out_dim, setup.bits
    if "image" in setup.features_in:
        return nn.Sequential(copy.deepcopy(setup.image_encoder), text_hash_net(width, bits, tanh_head_std(width)))
    return nn.Sequential(setup.image_encoder, nn.Linear(width, bits), nn.Tanh())


def text_head_std(setup: MethodSetup) -> float:
    """The official N(0, 0.3²) hash layer on bags of words; on standardised features it would
    saturate tanh (pre-tanh std ~8), so there the init keeps the official pre-tanh scale."""
    return tanh_head_std(setup.text_encoder.out_dim) if "text" in setup.features_in else 0.3
