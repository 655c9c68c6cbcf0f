"""`identity`: features and bag-of-words vectors pass through unchanged (as float32)."""

from __future__ import annotations

import torch

from cmhbench.encoders.base import Encoder
from cmhbench.errors import CmhbenchError


class IdentityEncoder(Encoder):
    takes_features = True

    def __init__(self, input_dim: int):
        super().__init__()
        self.out_dim = int(input_dim)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        if raw.dtype == torch.uint8 and raw.dim() == 4:
            raise CmhbenchError(
                "the 'identity' encoder takes feature vectors, but this dataset has pixel images; "
                "choose an image encoder such as --image-encoder alexnet"
            )
        return raw.float()


def create_identity(weights: str, input_dim: int | None) -> IdentityEncoder:
    if weights not in ("none", ""):
        raise CmhbenchError(f"the 'identity' encoder has no weights; got weights={weights!r}, expected 'none'")
    if input_dim is None:
        raise CmhbenchError("the 'identity' encoder needs the input width of the dataset's features")
    return IdentityEncoder(input_dim)
