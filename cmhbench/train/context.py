"""TrainContext: what a method's training loop gets from the harness.

Resume after a crash is the harness's job: ``ctx.epochs(published_n, stage)`` yields only the epochs
still to run in that stage, and after each finished epoch saves one checkpoint holding the method's full
state, every stage's progress and all random-number-generator states, so that a resumed run
continues bit-for-bit as an uninterrupted one would (on the same device and software).

The epoch budget is the harness's too. A method passes each stage's *published* epoch count; the
context applies the run's budget (``--epochs N`` or the protocol's) itself, so no method can ignore
it. A method that declares its schedule (`MethodSpec.stages`) has every stage scaled in proportion:
the longest published stage gets N epochs and every other stage round(published·N/longest), at
least one (DAPH's 80 + 220 under ``--epochs 22`` runs 8 + 22). Learning-rate schedules that depend
on the epoch count read ``planned_epochs`` so that they stretch or shrink with the budget.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import random
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import atomic_path, write_json_atomic
from cmhbench.results.provenance import utc_now

CHECKPOINT_NAME = "checkpoint.pt"
PROGRESS_NAME = "progress.json"  # a small readable copy of the progress, for `cmhbench status`


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CmhbenchError(f"--device {device}: no CUDA device is available; use --device cpu or auto")
    if not (device == "cpu" or device.startswith("cuda")):
        raise CmhbenchError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class TrainContext:
    """Device, precision, seeded generator, resumable epochs, progress and loss log for one run.

    ``generator`` is a CPU ``torch.Generator``: draw shuffles and samples from it (then move them to
    the device) so that a run is reproducible on any device and restorable from a checkpoint.
    """

    def __init__(
        self,
        *,
        device: torch.device,
        seed: int,
        checkpoint_dir: Path | None = None,
        precision: str = "auto",
        quiet: bool = False,
        epoch_override: int | None = None,
        schedule: dict[str, int] | None = None,
        run_id: str | None = None,
    ):
        self.device = device
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.run_id = run_id  # written into every checkpoint; a checkpoint of another run is refused
        if precision == "auto":
            precision = "bf16" if device.type == "cuda" else "fp32"
        if precision not in ("bf16", "fp32"):
            raise CmhbenchError(f"--precision {precision!r}: expected auto, bf16 or fp32")
        self.precision = precision
        self.quiet = quiet
        self.epoch_override = epoch_override
        #: the method's published epochs per declared stage (None: it declares none, so every
        #: stage it runs gets the budget itself, the behaviour before stages were declared)
        self.schedule = dict(schedule) if schedule is not None else None
        self.planned_by_stage: dict[str, int] = {}
        self.progress_by_stage: dict[str, int] = {}
        self.history: list[dict[str, Any]] = []
        self.resumed_from: dict[str, int] | None = None
        #: training time of earlier segments of this run (killed and resumed), from the checkpoint
        self.earlier_train_seconds = 0.0
        self.segments = 1
        self._segment_started = time.perf_counter()
        self._method: Any = None
        self._progress: Progress | None = None
        self._state_unchanged = False

    # --- precision -------------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast when the run's precision is bf16 (the default on CUDA; on the CPU only when
        asked for, which is how the test suite exercises a GPU run's precision path); else a no-op."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # --- epochs, checkpoints and resume ---------------------------------------------------
    def bind(self, method: Any) -> None:
        """Attach the method whose state goes into checkpoints; restore one if it exists. Training
        time counts from here."""
        self._method = method
        self._segment_started = time.perf_counter()
        path = self.checkpoint_path
        if path is not None and path.exists():
            try:
                state = torch.load(path, map_location="cpu", weights_only=False)
            except Exception as exc:
                raise CmhbenchError(
                    f"checkpoint {path} cannot be read ({type(exc).__name__}); delete it to start over"
                ) from None
            owner = state.get("run_id") if isinstance(state, dict) else None
            if self.run_id is not None and owner != self.run_id:
                raise CmhbenchError(
                    f"checkpoint {path} belongs to run {str(owner)[:12]}…, not to this run "
                    f"{self.run_id[:12]}…; it was copied or moved here: delete it to start this run afresh")
            method.load_state_dict(state["method"])  # CPU tensors: the method places them
            self.progress_by_stage = dict(state["progress"])
            self.planned_by_stage = dict(state.get("planned", {}))
            self.history = list(state.get("history", []))
            self._restore_rng(state["rng"])
            self.resumed_from = dict(self.progress_by_stage)
            self.earlier_train_seconds = float(state.get("train_seconds", 0.0))
            self.segments = int(state.get("segments", 1)) + 1

    def train_seconds(self) -> float:
        """Training time of the whole run: every earlier segment's (up to its last checkpoint) plus
        this one's so far."""
        return self.earlier_train_seconds + time.perf_counter() - self._segment_started

    @property
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / CHECKPOINT_NAME if self.checkpoint_dir else None

    def planned_epochs(self, published: int, stage: str = "train") -> int:
        """The epochs ``stage`` runs under this run's budget, given its published count."""
        published = int(published)
        if published < 1:
            raise CmhbenchError(f"stage {stage!r}: a published epoch count must be at least 1, got {published}")
        if self.schedule is not None and stage in self.schedule and self.schedule[stage] != published:
            raise CmhbenchError(
                f"stage {stage!r} was asked to run {published} epochs, but the method's schedule "
                f"publishes {self.schedule[stage]}: pass the published count to ctx.epochs; the budget "
                "is applied by the harness")
        if self.epoch_override is None:
            return published
        if self.schedule is None:  # nothing declared: the budget is the stage's epoch count
            return int(self.epoch_override)
        if stage not in self.schedule:  # a fixed loop outside the schedule (e.g. a closed-form solve)
            return published
        longest = max(self.schedule.values())
        return max(1, round(published * int(self.epoch_override) / longest))

    def epochs(self, published: int, stage: str = "train", *, fresh_random_state: bool = False) -> Iterator[int]:
        """Yield the epoch numbers of ``stage`` that have not run yet, under the run's budget (see
        the module docstring); checkpoint after each.

        ``fresh_random_state`` reseeds every generator from (seed, stage) when the stage starts, so
        that what it draws does not depend on how much an earlier stage drew: a stage that follows
        one whose product can be reused from a cache (DAPH's proxies) gives the same result whether
        the earlier stage ran in this process or not."""
        n = self.planned_epochs(published, stage)
        self.planned_by_stage[stage] = n
        done = self.progress_by_stage.get(stage, 0)
        if fresh_random_state and done == 0:
            self._reseed(stage)
        task = None
        if self._progress is not None:
            task = self._progress.add_task(stage, total=n, completed=min(done, n))
        for epoch in range(done, n):
            yield epoch
            self.progress_by_stage[stage] = epoch + 1
            if self._state_unchanged:
                self._state_unchanged = False  # nothing new to save: a crash replays this no-op epoch
            else:
                self.save_checkpoint()
            if task is not None:
                self._progress.update(task, advance=1, description=self._describe(stage))
        if task is not None:
            self._progress.update(task, visible=False)

    def epoch_changed_nothing(self) -> None:
        """Called during an epoch that changed no state and drew no random numbers (e.g. SSAH's
        epochs after every rate has frozen): its checkpoint is skipped, since replaying it after a
        crash gives the same state. SSAH's 108 MB checkpoint written for each of 480 such epochs
        took most of its 11-minute Wikipedia run."""
        self._state_unchanged = True

    def save_checkpoint(self) -> None:
        if self.checkpoint_path is None or self._method is None:
            return
        state = {
            "run_id": self.run_id,
            "method": self._method.state_dict(),
            "progress": dict(self.progress_by_stage),
            "planned": dict(self.planned_by_stage),
            "history": list(self.history),
            "rng": self._capture_rng(),
            "train_seconds": self.train_seconds(),
            "segments": self.segments,
        }
        with atomic_path(self.checkpoint_path) as tmp:
            try:
                torch.save(state, tmp)
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                raise CmhbenchError(self._unsaveable(state["method"], exc)) from None
        write_json_atomic(self.checkpoint_dir / PROGRESS_NAME, {  # a status hint; the checkpoint is the truth
            "progress": dict(self.progress_by_stage),
            "saved_utc": utc_now()}, durable=False)

    def _unsaveable(self, method_state: Any, exc: BaseException) -> str:
        """One line naming the method and the entry of its state_dict() that cannot be saved."""
        culprit = "its state_dict()"
        if isinstance(method_state, dict):
            for key, value in method_state.items():
                try:
                    pickle.dumps(value)
                except Exception:  # noqa: BLE001 - any failure names this entry
                    culprit = f"state_dict()[{key!r}] (a {type(value).__name__})"
                    break
        return (f"method {type(self._method).__name__}: {culprit} cannot be saved in a checkpoint "
                f"({type(exc).__name__}: {exc}); a state holds tensors, numbers, strings and lists or "
                "dicts of them")

    def _reseed(self, stage: str) -> None:
        stage_seed = int(hashlib.sha256(f"{self.seed}:{stage}".encode()).hexdigest()[:15], 16)
        seed_everything(stage_seed)
        self.generator.manual_seed(stage_seed)

    def _capture_rng(self) -> dict[str, Any]:
        rng = {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "generator": self.generator.get_state(),
        }
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return rng

    def _restore_rng(self, rng: dict[str, Any]) -> None:
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["generator"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])

    def epochs_record(self) -> dict[str, dict[str, int]]:
        """Per stage: the epochs planned under the budget and the epochs actually run (every
        segment of a resumed run counted)."""
        return {stage: {"planned": planned, "run": int(self.progress_by_stage.get(stage, 0))}
                for stage, planned in self.planned_by_stage.items()}

    # --- logging and progress -------------------------------------------------------------
    def log(self, stage: str, epoch: int, **values: float) -> None:
        """Record per-epoch losses; they go into the result file's training history."""
        entry = {"stage": stage, "epoch": epoch}
        entry.update({k: float(v) for k, v in values.items()})
        self.history.append(entry)

    def _describe(self, stage: str) -> str:
        last = next((h for h in reversed(self.history) if h["stage"] == stage), None)
        if not last:
            return stage
        losses = " ".join(f"{k}={v:.4g}" for k, v in last.items() if k not in ("stage", "epoch"))
        return f"{stage} {losses}"

    @contextlib.contextmanager
    def progress_display(self) -> Iterator[None]:
        if self.quiet:
            yield
            return
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), transient=True)
        self._progress = progress
        with progress:
            yield
        self._progress = None

