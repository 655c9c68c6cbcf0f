"""Train-split standardisation of a method's inputs."""

from __future__ import annotations

from typing import Any

import torch

from cmhbench.method import MethodSetup


class InputNormaliser:
    """Train-split input statistics: texts are centred (DCMH's ``normZeroMean``) unless
    ``centre_bow`` is off (DAPH and SSAH feed raw bags of words); feature inputs (image features,
    text features such as LDA topics) are centred and scaled to unit variance
    (``normEqualVariance``); pixels are left to the backbone."""

    def __init__(self, device: torch.device, feature_image: bool, feature_text: bool, centre_bow: bool = True):
        self.device = device
        self.feature = {"image": feature_image, "text": feature_text}
        self.centre_bow = centre_bow
        self.shift = {m: torch.zeros(1, device=device) for m in ("image", "text")}
        self.scale = {m: torch.ones(1, device=device) for m in ("image", "text")}

    @classmethod
    def for_setup(cls, setup: MethodSetup, centre_bow: bool = True) -> "InputNormaliser":
        """The normaliser for the inputs ``setup`` describes (``setup.features_in``)."""
        return cls(setup.device, "image" in setup.features_in, "text" in setup.features_in, centre_bow)

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

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.shift = {m: t.to(self.device) for m, t in state["shift"].items()}
        self.scale = {m: t.to(self.device) for m, t in state["scale"].items()}
