"""`toy-cnn`: a small 3-layer CNN for the synthetic toy images (32-64 px), 512-d output.

ImageNet backbones need 224 px inputs and hours of GPU time to move from a random start; this one
is small enough for deep methods to converge on a CPU in about a minute on the toy dataset.

    conv 3->32 3×3 pad 1, ReLU, max-pool 2 | conv 32->64 3×3 pad 1, ReLU, max-pool 2 |
    conv 64->128 3×3 pad 1, ReLU | global average and global max pool, concatenated (256) |
    Linear 256->512, ReLU

The toy images put each label's coloured shape at a random place, so the features are pooled over
the whole map (translation invariant, any input size); the global max keeps a small shape from
being averaged away by the background, the average keeps a smoother signal for the gradients.
Pixels are scaled to [0, 1] and centred (``x / 255 - 0.5``); there are no pretrained weights.
"""

from __future__ import annotations


import torch
from torch import nn

from cmhbench.encoders.base import Encoder, check_pixels, load_state_file
from cmhbench.errors import CmhbenchError

OUT_DIM = 512


class ToyCnnEncoder(Encoder):
    """uint8 N×H×W×3 pixels -> x/255 - 0.5 -> three conv layers -> pooled -> N×512."""

    def __init__(self):
        super().__init__()
        self.out_dim = OUT_DIM
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.project = nn.Sequential(nn.Linear(2 * 128, OUT_DIM), nn.ReLU(inplace=True))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        check_pixels(raw)
        pixels = raw.permute(0, 3, 1, 2).float() / 255.0 - 0.5
        maps = self.features(pixels)
        pooled = torch.cat([maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))], dim=1)
        return self.project(pooled)


def create_toy_cnn(weights: str, input_dim: int | None = None) -> ToyCnnEncoder:
    """``weights``: 'none' (PyTorch's default random init) or a state dict saved from this module."""
    encoder = ToyCnnEncoder()
    if weights in ("none", ""):
        return encoder
    if weights == "imagenet":
        raise CmhbenchError("toy-cnn has no pretrained (ImageNet) weights; use --image-weights none, "
                            "or a path to a state dict saved from a toy-cnn encoder")
    return load_state_file(encoder, weights, "toy-cnn", "'none'")
