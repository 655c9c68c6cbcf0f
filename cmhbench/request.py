"""A run request and its one check, torch-free: `cmhbench run`, `cmhbench sweep` and the runner's
``plan()`` all refuse a bad request through `check_request`, before any data is read or torch is
imported."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from cmhbench.errors import CmhbenchError
from cmhbench.evaluation.directions import MAX_BITS, check_directions
from cmhbench.hparams import choose_preset, resolve_hparams

if TYPE_CHECKING:
    from cmhbench.plugins.registry import Registry
    from cmhbench.specs import DatasetSpec, MethodSpec

PRECISIONS = ("auto", "bf16", "fp32")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


@dataclass
class RunRequest:
    """What `cmhbench run` asks for, one code length and one seed."""

    method: str
    dataset: str
    bits: int
    seed: int = 0
    epochs: int | None = None
    device: str = "auto"
    precision: str = "auto"
    hparams: Mapping[str, Any] = field(default_factory=dict)
    preset: str | None = None
    dataset_options: Mapping[str, Any] = field(default_factory=dict)
    image_encoder: str | None = None
    image_weights: str | None = None
    results_dir: str | Path = "results"
    force: bool = False
    quiet: bool = False
    directions: Sequence[str] = ("i2t", "t2i")
    #: print every epoch's logged losses (also when output is not a terminal)
    log_losses: bool = False


@dataclass(frozen=True)
class CheckedRequest:
    """A request that passed `check_request`, with what the check resolved."""

    request: RunRequest
    method_spec: "MethodSpec"
    dataset_spec: "DatasetSpec"
    preset: str | None
    hparams: dict[str, Any]
    #: the epoch budget: --epochs, else the protocol's (None: the published schedule)
    epoch_override: int | None


MAX_SEED = 2**32 - 1  # what every generator seeded from it (torch, numpy, Python) takes as it is


def check_seed(seed: object, option: str) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise CmhbenchError(f"{option} {seed!r}: seeds are integers from 0 to {MAX_SEED:,}")


def check_results_dir(path: Path) -> None:
    """The results folder, or the nearest of its parents that exists, must be a folder (a read-only
    one is refused, in one line, only where a run must write: finished runs are read from it)."""
    existing = next((p for p in [path, *path.parents] if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise CmhbenchError(f"--results {path}: {existing} is a file, not a folder")


def check_request(request: RunRequest, registry: "Registry") -> CheckedRequest:
    """Every error a user can make in a request, each one line naming the option."""
    method_spec = registry.method(request.method)
    dataset_spec = registry.dataset(request.dataset)
    if isinstance(request.bits, bool) or not isinstance(request.bits, int) or request.bits <= 0:
        raise CmhbenchError(f"--bits {request.bits!r}: code lengths must be positive integers")
    if request.bits > MAX_BITS:
        raise CmhbenchError(f"--bits {request.bits}: the evaluator scores codes of at most {MAX_BITS} bits")
    check_seed(request.seed, "--seeds")
    if request.epochs is not None and request.epochs < 1:
        raise CmhbenchError(f"--epochs {request.epochs}: expected at least 1")
    if request.precision not in PRECISIONS:
        raise CmhbenchError(f"--precision {request.precision!r}: expected {', '.join(PRECISIONS)}")
    if not _DEVICE.fullmatch(str(request.device)):
        raise CmhbenchError(f"--device {request.device!r}: expected auto, cpu, cuda or cuda:N")
    check_directions(request.directions)
    check_results_dir(Path(request.results_dir))
    protocol = dataset_spec.protocol
    preset = choose_preset(method_spec, protocol.preset, request.preset)
    hparams = resolve_hparams(method_spec, preset, request.hparams)
    epoch_override = request.epochs if request.epochs is not None else protocol.epochs
    return CheckedRequest(request, method_spec, dataset_spec, preset, hparams, epoch_override)
