"""The encoder interface."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cmhbench.errors import CmhbenchError


class Encoder(nn.Module):
    """Maps a batch of raw inputs, as stored on the device, to float feature vectors.

    ``out_dim`` is the feature width. Image encoders take uint8 N×H×W×3 pixels and normalise them
    themselves, on the device; feature encoders take float N×D.
    """

    out_dim: int
    #: True for an encoder that passes feature vectors through (``identity``): a method then sees
    #: that modality in ``MethodSetup.features_in`` and builds its feature-input network
    takes_features: bool = False

    def forward(self, raw: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


def load_state_file(module: torch.nn.Module, weights: str, name: str, accepted: str) -> torch.nn.Module:
    """Load a local state-dict file (optionally wrapped as {"state_dict": ...}) into ``module``;
    a missing or mismatched file is one error naming the file, the encoder and what ``--image-weights``
    accepts (``accepted``, e.g. "'none', 'imagenet'")."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise CmhbenchError(f"image weights file {path} does not exist; expected {accepted} or a path to a "
                            f"state-dict file for {name}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        module.load_state_dict(state)
    except Exception as exc:
        raise CmhbenchError(f"{path} is not a state dict for {name} ({type(exc).__name__}: {exc})") from None
    return module


def check_pixels(raw: torch.Tensor) -> None:
    """Image encoders take uint8 N×H×W×3 pixels; each refuses anything else with this one message."""
    if raw.dtype != torch.uint8 or raw.dim() != 4 or raw.shape[-1] != 3:
        raise CmhbenchError(
            f"image backbones take uint8 N×H×W×3 pixels, got {raw.dtype} {tuple(raw.shape)}; "
            "use --image-encoder identity for feature datasets"
        )
