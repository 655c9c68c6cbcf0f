"""The hashing-method interface every built-in and third-party method implements.

A method says what it is and the harness does the rest: its hyper-parameters arrive typed
(``self.hp``, an instance of the spec's ``params`` dataclass), ``stateful`` names the attributes a
checkpoint holds (the base class saves and restores them, devices included), and
``setup.features_in`` says which modalities arrive as feature vectors rather than raw input.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import torch

from cmhbench.encoders.base import Encoder
from cmhbench.errors import CmhbenchError
from cmhbench.specs import HyperParameters

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
    #: the hyper-parameters typed: the spec's ``params`` dataclass (attribute access either way)
    params: Any = None
    #: the modalities that arrive as feature vectors ("image" behind the identity encoder, "text"
    #: for feature texts such as LDA topics) rather than pixels or bags of words
    features_in: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.params is None:
            object.__setattr__(self, "params", HyperParameters(self.hparams))
        if self.features_in is None:
            image = getattr(self.image_encoder, "takes_features", False)
            found = {"image"} if image else set()
            found |= {"text"} if self.text_kind == "features" else set()
            object.__setattr__(self, "features_in", frozenset(found))


class HashingMethod(ABC):
    """A cross-modal hashing method. It owns its training loop; the harness owns the rest.

    ``encode_image`` / ``encode_text`` receive one batch as stored on the device (uint8 pixels or
    float features; float bag-of-words) and return int8 codes in {-1, +1}. The harness calls them
    under ``torch.inference_mode()``.
    """

    #: attribute names whose values a checkpoint holds: modules, optimisers and anything with
    #: ``state_dict``/``load_state_dict``, tensors, and dicts of these (None allowed). A method
    #: whose state changes shape over training defines a property instead.
    stateful: tuple[str, ...] = ()

    #: False for a configuration that only trains a reusable artifact (e.g. DAPH ``stage=proxies``):
    #: the runner then encodes and scores nothing, writes no result file and reports the artifacts.
    produces_codes: bool = True

    def __init__(self, setup: MethodSetup):
        self.setup = setup
        self.bits = setup.bits
        self.hp = setup.params
        self.hparams = dict(setup.hparams)
        self.device = setup.device

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own_state = cls.state_dict is not HashingMethod.state_dict
        if not inspect.isabstract(cls) and not own_state and not cls.stateful:
            raise TypeError(f"method class {cls.__name__}: declare `stateful = (...)` (the attributes a "
                            "checkpoint holds) or implement state_dict() and load_state_dict()")

    def diagnostics(self) -> dict[str, Any]:
        """Method-specific health figures recorded in the result (e.g. SSAH's LabNet check), so
        that a run that trained into a degenerate state is visible, not only a low mAP."""
        return {}

    def artifacts(self) -> dict[str, str]:
        """Files this run saved for later runs to reuse (name -> path); recorded in the result."""
        return {}

    @abstractmethod
    def fit(self, train: "SplitData", ctx: "TrainContext") -> None:
        """Train on the train split only. Loop over ``ctx.epochs(stage)`` so that resume works and
        the run's epoch budget applies."""

    @abstractmethod
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """int8 codes in {-1, +1}, one row per image."""

    @abstractmethod
    def encode_text(self, texts: torch.Tensor) -> torch.Tensor:
        """int8 codes in {-1, +1}, one row per text."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly where it stopped: the ``stateful``
        attributes."""
        return {name: _capture(getattr(self, name)) for name in self.stateful}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned, onto this method's device. Entries are restored in
        ``stateful`` order, re-reading it after each, so that a property whose names depend on an
        earlier entry (DAPH drops its stage-1 networks once its proxies exist) sees that entry."""
        restored: set[str] = set()
        while pending := [name for name in self.stateful if name not in restored]:
            name = pending[0]
            if name not in state:
                raise CmhbenchError(f"method {type(self).__name__}: the saved state has no {name!r} (saved by "
                                    "another version of the method?); delete the checkpoint to start over")
            setattr(self, name, _restore(getattr(self, name), state[name], self.device))
            restored.add(name)


def _capture(value: Any) -> Any:
    if hasattr(value, "state_dict") and callable(value.state_dict):
        return value.state_dict()
    if isinstance(value, dict):
        return {key: _capture(item) for key, item in value.items()}
    return value


def _restore(current: Any, saved: Any, device: torch.device) -> Any:
    if hasattr(current, "load_state_dict") and callable(current.load_state_dict):
        current.load_state_dict(saved)
        return current
    if isinstance(current, dict) and isinstance(saved, dict):
        return {key: _restore(current.get(key), item, device) for key, item in saved.items()}
    return _to_device(saved, device)


def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {key: _to_device(item, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(item, device) for item in value)
    return value


def to_codes(values: torch.Tensor) -> torch.Tensor:
    """Sign to int8 {-1, +1}; an exact zero maps to +1 so that every bit is defined."""
    return torch.where(values >= 0, 1, -1).to(torch.int8)
