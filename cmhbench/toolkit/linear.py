"""Linear codes learnt in closed form on feature vectors: the shallow methods' common ground."""

from __future__ import annotations

import torch

from cmhbench.errors import CmhbenchError
from cmhbench.method import HashingMethod, MethodSetup, to_codes


class LinearHashing(HashingMethod):
    """A method whose codes are sign((x - mean) W) per modality, learnt in closed form on features.

    Subclasses implement ``solve(x, y, labels, ctx) -> (W_image, W_text)`` on centred float64
    training features. Inputs must be feature vectors: the runner supplies cached frozen-encoder
    features for pixel datasets (see `cmhbench.features`).
    """

    stateful = ("projections", "means")

    def __init__(self, setup: MethodSetup):
        super().__init__(setup)
        if "image" not in setup.features_in:
            raise CmhbenchError("shallow methods learn on feature vectors; the runner should have supplied "
                                "cached encoder features")
        self.projections: dict[str, torch.Tensor] = {}
        self.means: dict[str, torch.Tensor] = {}

    def fit(self, train, ctx) -> None:
        for _ in ctx.epochs("solve", published=1):
            x = torch.cat([b.images for b in train.batches(8192, modalities=("image",))]).double()
            y = torch.cat([b.texts for b in train.batches(8192, modalities=("text",))]).double()
            self.means = {"image": x.mean(0), "text": y.mean(0)}
            w_image, w_text = self.solve(x - self.means["image"], y - self.means["text"], train.labels.double(), ctx)
            self.projections = {"image": w_image, "text": w_text}

    def solve(self, x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor, ctx) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _encode(self, raw: torch.Tensor, modality: str) -> torch.Tensor:
        return to_codes((raw.double() - self.means[modality]) @ self.projections[modality])

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self._encode(images, "image")

    def encode_text(self, texts: torch.Tensor) -> torch.Tensor:
        return self._encode(texts, "text")
