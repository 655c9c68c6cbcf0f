"""TrainContext: what a method's training loop gets from the harness, and nothing else.

``ctx.epochs(stage)`` yields the epochs of a declared stage still to run under the run's budget and
checkpoints after each, so resume and the budget are the harness's, never the method's. The
harness's own side of a run (checkpoints, RNG state, timing, the display) is `TrainingSession`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch

from cmhbench.errors import CmhbenchError
from cmhbench.train.precision import autocast

if TYPE_CHECKING:
    from cmhbench.train.session import TrainingSession


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CmhbenchError(f"--device {device}: no CUDA device is available; use --device cpu or auto")
    if not (device == "cpu" or device.startswith("cuda")):
        raise CmhbenchError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
    return torch.device(device)


def _stage_of(name: str, args: tuple, names: dict) -> str:
    """The stage a call names: ``ctx.epochs("train")`` or ``ctx.epochs(stage="train")``. The API before
    stages were read from the spec (``ctx.epochs(500, stage="train")``) is one line saying what to write."""
    stage = args[0] if args else names.pop("stage", "train")
    if len(args) > 1 or names or not isinstance(stage, str):
        raise CmhbenchError(f"ctx.{name}(...): pass the stage's name, ctx.{name}('train'); its published epoch "
                            "count comes from MethodSpec.stages (a fixed loop outside the schedule passes "
                            "published=N)")
    return stage


class TrainContext:
    """Device, precision, a seeded generator, resumable epochs and a loss log for one run.

    ``generator`` is a CPU ``torch.Generator``: draw shuffles and samples from it (then move them to
    the device) so that a run is reproducible on any device and restorable from a checkpoint.
    """

    def __init__(self, session: TrainingSession):
        self._session = session
        self.device: torch.device = session.device
        self.seed: int = session.seed
        self.precision: str = session.precision
        self.generator: torch.Generator = session.generator

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast in a bf16 run, else a no-op."""
        return autocast(self.precision, self.device)

    def epochs(self, *stage: str, published: int | None = None, fresh_random_state: bool = False,
               **names: Any) -> Iterator[int]:
        """The epoch numbers of ``stage`` not run yet under the run's budget; a checkpoint after each.

        A declared stage (``MethodSpec.stages``) takes its published count from the spec; a fixed loop
        outside the schedule passes ``published``. ``fresh_random_state`` reseeds every generator
        from (seed, stage) when the stage starts, so that what it draws does not depend on how much
        an earlier stage drew (DAPH's hashing stage after proxies read from a cache)."""
        return self._session.epochs(_stage_of("epochs", stage, names), published, fresh_random_state)

    def planned_epochs(self, *stage: str, published: int | None = None, **names: Any) -> int:
        """The epochs the stage runs under this run's budget (for rate schedules that stretch with it)."""
        return self._session.budget.planned(_stage_of("planned_epochs", stage, names), published)

    def log(self, stage: str, epoch: int, **values: float) -> None:
        """Record per-epoch losses; they go into the result file's training history."""
        self._session.log(stage, epoch, values)

    def epoch_changed_nothing(self) -> None:
        """Called during an epoch that changed no state and drew no random numbers (e.g. SSAH's
        epochs after every rate has frozen): its checkpoint is skipped, since replaying it after a
        crash gives the same state."""
        self._session.skip_next_checkpoint = True

    def phase(self, name: str, total: int | None = None) -> contextlib.AbstractContextManager[Callable[[int], None]]:
        """A progress bar for a long step outside the epochs; yields ``advance(n)``."""
        return self._session.progress.phase(name, total)
