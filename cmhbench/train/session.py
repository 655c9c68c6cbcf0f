"""TrainingSession: the harness's side of one run's training (the method sees `TrainContext`).

After each finished epoch it saves one checkpoint holding the method's full state, every stage's
progress and all random-number-generator states, so that a resumed run continues bit for bit as an
uninterrupted one would (on the same device and software); it also times training across resumed
segments and drives the display.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import torch

from cmhbench.train.budget import EpochBudget
from cmhbench.train.checkpoint import (CHECKPOINT_NAME, capture_rng, read_checkpoint, restore_rng, seed_everything,
                                       stage_seed, write_checkpoint, write_progress)
from cmhbench.train.context import TrainContext
from cmhbench.progress import TrainingProgress


class MethodStateError(Exception):
    """The method's state_dict() raised: the runner names the method and its plugin."""


class TrainingSession:
    def __init__(self, *, device: torch.device, seed: int, checkpoint_dir: Path | None = None,
                 precision: str = "fp32", epoch_override: int | None = None,
                 schedule: dict[str, int] | None = None, run_id: str | None = None,
                 progress: TrainingProgress | None = None):
        if precision not in ("bf16", "fp32"):
            raise ValueError(f"precision {precision!r}: resolve 'auto' first (cmhbench.train.precision)")
        self.device, self.seed, self.precision, self.run_id = device, seed, precision, run_id
        self.generator = torch.Generator().manual_seed(seed)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.budget = EpochBudget(epoch_override, schedule)
        self.progress = progress or TrainingProgress(mode="quiet")
        self.planned_by_stage: dict[str, int] = {}
        self.progress_by_stage: dict[str, int] = {}
        #: epochs that changed nothing (`TrainContext.epoch_changed_nothing`): run, but no training in them
        self.idle_by_stage: dict[str, int] = {}
        self.history: list[dict[str, Any]] = []
        self.resumed_from: dict[str, int] | None = None
        #: training time of earlier segments of this run (killed and resumed), from the checkpoint
        self.earlier_train_seconds = 0.0
        self.segments = 1
        #: train-split items handed to the method in this segment (the throughput's numerator)
        self.items_fed = 0
        self.skip_next_checkpoint = False
        #: time spent writing checkpoints, the whole run's as ``train_seconds`` counts it (inside the
        #: training time; throughput takes it out)
        self.checkpoint_seconds = 0.0
        #: the whole run's training time, fixed when training ends (`stop_clock`)
        self.train_seconds_total: float | None = None
        self._segment_started = time.perf_counter()
        self._method: Any = None
        self.ctx = TrainContext(self)

    @property
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / CHECKPOINT_NAME if self.checkpoint_dir else None

    def bind(self, method: Any) -> None:
        """Attach the method whose state goes into checkpoints; restore one if it exists. Training
        time counts from here."""
        self._method = method
        self._segment_started = time.perf_counter()
        path = self.checkpoint_path
        if path is None or not path.exists():
            return
        state = read_checkpoint(path, self.run_id)
        method.load_state_dict(state["method"])  # CPU tensors: the method places them
        self.progress_by_stage = dict(state["progress"])
        self.planned_by_stage = dict(state.get("planned", {}))
        self.idle_by_stage = dict(state.get("idle", {}))
        self.history = list(state.get("history", []))
        restore_rng(state["rng"], self.generator)
        self.resumed_from = dict(self.progress_by_stage)
        self.earlier_train_seconds = float(state.get("train_seconds", 0.0))
        self.checkpoint_seconds = float(state.get("checkpoint_seconds", 0.0))
        self.segments = int(state.get("segments", 1)) + 1

    def train_seconds(self) -> float:
        """Training time of the whole run: every earlier segment's (up to its last checkpoint) plus
        this one's so far."""
        return self.earlier_train_seconds + time.perf_counter() - self._segment_started

    def stop_clock(self) -> float:
        self.train_seconds_total = self.train_seconds()
        return self.train_seconds_total

    def items_per_second(self) -> float:
        """Train-split items handed to the method per second of this segment's training (every stage
        and every batch the method drew; an earlier segment's items are not in its checkpoint)."""
        assert self.train_seconds_total is not None, "stop_clock() first"
        seconds = self.train_seconds_total - self.earlier_train_seconds
        return self.items_fed / seconds if seconds > 0 else 0.0

    def epochs(self, stage: str, published: int | None, fresh_random_state: bool) -> Iterator[int]:
        planned = self.budget.planned(stage, published)
        self.planned_by_stage[stage] = planned
        done = self.progress_by_stage.get(stage, 0)
        if fresh_random_state and done == 0:
            reseeded = stage_seed(self.seed, stage)
            seed_everything(reseeded)
            self.generator.manual_seed(reseeded)
        self.progress.stage_started(stage, planned, done)
        for epoch in range(done, planned):
            yield epoch
            self.progress_by_stage[stage] = epoch + 1
            if self.skip_next_checkpoint:
                self.skip_next_checkpoint = False  # nothing new to save: a crash replays this no-op epoch
                self.idle_by_stage[stage] = self.idle_by_stage.get(stage, 0) + 1
            else:
                self.save_checkpoint()
            self.progress.epoch_done(stage, epoch)
        self.progress.stage_ended(stage)

    def log(self, stage: str, epoch: int, values: dict[str, float]) -> None:
        entry = {"stage": stage, "epoch": epoch, **{k: float(v) for k, v in values.items()}}
        self.history.append(entry)
        self.progress.logged(entry)

    def save_checkpoint(self) -> None:
        if self.checkpoint_path is None or self._method is None:
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # the epoch's queued kernels are training, not saving
        started = time.perf_counter()
        try:
            method_state = self._method.state_dict()
        except Exception as exc:
            raise MethodStateError(exc) from exc
        state = {"run_id": self.run_id, "method": method_state, "progress": dict(self.progress_by_stage),
                 "planned": dict(self.planned_by_stage), "idle": dict(self.idle_by_stage),
                 "history": list(self.history),
                 "rng": capture_rng(self.generator), "train_seconds": self.train_seconds(),
                 # up to this checkpoint's start, as train_seconds counts up to its state
                 "checkpoint_seconds": self.checkpoint_seconds, "segments": self.segments}
        write_checkpoint(self.checkpoint_path, state, type(self._method).__name__)
        write_progress(self.checkpoint_dir, self.progress_by_stage, self.planned_by_stage,
                       self.history[-1] if self.history else None)
        self.checkpoint_seconds += time.perf_counter() - started

    def epochs_record(self) -> dict[str, dict[str, int]]:
        """Per stage: the epochs planned under the budget and the epochs actually run (every
        segment of a resumed run counted), and, where some were, how many of those changed nothing."""
        record = {stage: {"planned": planned, "run": int(self.progress_by_stage.get(stage, 0))}
                  for stage, planned in self.planned_by_stage.items()}
        for stage, idle in self.idle_by_stage.items():
            record[stage]["idle"] = idle
        return record
