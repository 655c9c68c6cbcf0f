"""The encoder interface."""

from __future__ import annotations

import torch
from torch import nn


class Encoder(nn.Module):
    """Maps a batch of raw inputs, as stored on the device, to float feature vectors.

    ``out_dim`` is the feature width. Image encoders take uint8 N×H×W×3 pixels and normalise them
    themselves, on the device; feature encoders take float N×D.
    """

    out_dim: int

    def forward(self, raw: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError
