"""The hashing-method interface every built-in and third-party method implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import torch

from cmhbench.encoders.base import Encoder

if TYPE_CHECKING:
    from cmhbench.data.sources import SplitData
    from cmhbench.train.context import TrainContext


@dataclass(frozen=True)
class MethodSetup:
    """Everything a method needs to build its networks before training starts.

    Methods build all their state (networks, optimisers, per-item matrices) from this in their
    constructor, so that the harness can restore a checkpoint into them before ``fit`` runs.
    """

    bits: int
    hparams: Mapping[str, Any]
    #: None for a method with ``input="direct"`` (no backbone): it reads ``batch.images`` as stored
    image_encoder: Encoder | None
    text_encoder: Encoder
    num_train: int
    num_labels: int
    text_dim: int
    image_kind: str
    text_kind: str
    device: torch.device
    #: identifies the dataset version and split (for methods that cache artifacts across runs)
    dataset_id: str = ""
    seed: int = 0


class HashingMethod(ABC):
    """A cross-modal hashing method. It owns its training loop; the harness owns the rest.

    ``encode_image`` / ``encode_text`` receive one batch as stored on the device (uint8 pixels or
    float features; float bag-of-words) and return int8 codes in {-1, +1}. The harness calls them
    under ``torch.inference_mode()``.
    """

    def __init__(self, setup: MethodSetup):
        self.setup = setup
        self.bits = setup.bits
        self.hparams = dict(setup.hparams)
        self.device = setup.device

    #: False for a configuration that only trains a reusable artifact (e.g. DAPH ``stage=proxies``):
    #: the runner then encodes and scores nothing, writes no result file and reports the artifacts.
    produces_codes: bool = True

    def diagnostics(self) -> dict[str, Any]:
        """Method-specific health figures recorded in the result (e.g. SSAH's LabNet check), so
        that a run that trained into a degenerate state is visible, not only a low mAP."""
        return {}

    def artifacts(self) -> dict[str, str]:
        """Files this run saved for later runs to reuse (name -> path); recorded in the result."""
        return {}

    @abstractmethod
    def fit(self, train: "SplitData", ctx: "TrainContext") -> None:
        """Train on the train split only. Loop over ``ctx.epochs(published_n, stage)`` so that resume
        works and the run's epoch budget applies."""

    @abstractmethod
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """int8 codes in {-1, +1}, one row per image."""

    @abstractmethod
    def encode_text(self, texts: torch.Tensor) -> torch.Tensor:
        """int8 codes in {-1, +1}, one row per text."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly where it stopped."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""


def to_codes(values: torch.Tensor) -> torch.Tensor:
    """Sign to int8 {-1, +1}; an exact zero maps to +1 so that every bit is defined."""
    return torch.where(values >= 0, 1, -1).to(torch.int8)
