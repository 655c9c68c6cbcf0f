"""What a run shows while it trains: a bar per stage and phase on a terminal (epochs, steps, items/s,
ETA, the latest losses), one-line records every ``interval`` seconds when output is not a terminal
(Slurm logs, ``nohup``), and each epoch's losses on request."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Callable, Iterator, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

LOG_INTERVAL_SECONDS = 30.0


def _losses(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in values.items() if k not in ("stage", "epoch"))


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class _Stage:
    def __init__(self, name: str, total: int, done: int):
        self.name, self.total, self.done, self.started_at_epoch = name, total, done, done
        self.started = time.perf_counter()
        self.items = self.steps = 0
        self.last: dict[str, Any] = {}

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.started
        return self.items / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        ran = self.done - self.started_at_epoch
        if ran <= 0:
            return None
        return (time.perf_counter() - self.started) / ran * (self.total - self.done)

    def line(self) -> str:
        parts = [f"{self.name} epoch {min(self.done + 1, self.total)}/{self.total}", f"step {self.steps}"]
        if self.items:
            parts.append(f"{self.rate():,.0f} items/s")
        eta = self.eta()
        if eta is not None:
            parts.append(f"ETA {_duration(eta)}")
        if self.last:
            parts.append(_losses(self.last))
        return " · ".join(parts)


class TrainingProgress:
    """``mode``: "terminal" (rich bars), "log" (timed one-line records) or "quiet"; "auto" picks
    terminal when ``stream`` is one, else log."""

    def __init__(self, label: str = "", mode: str = "auto", log_losses: bool = False,
                 interval: float = LOG_INTERVAL_SECONDS, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "terminal" if self.stream.isatty() else "log"
        self.mode, self.label, self.log_losses, self.interval = mode, label, log_losses, interval
        self._bars: Progress | None = None
        self._tasks: dict[str, Any] = {}
        self._stage: _Stage | None = None
        self._last_line = time.perf_counter()

    # --- the harness's calls ----------------------------------------------------------------
    @contextlib.contextmanager
    def running(self) -> Iterator["TrainingProgress"]:
        if self.mode != "terminal":
            yield self
            return
        self._bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                              console=Console(file=self.stream), transient=True)
        with self._bars:
            yield self
        self._bars = None

    def print(self, message: str) -> None:
        if self.mode == "quiet":
            return
        if self._bars is not None:
            self._bars.console.print(message, markup=False, highlight=False)
        else:
            stamp = time.strftime("%H:%M:%S")
            print(f"cmhbench {stamp} {self.label}: {message}", file=self.stream, flush=True)

    # --- stages (epochs) ----------------------------------------------------------------------
    def stage_started(self, stage: str, total: int, done: int) -> None:
        self._stage = _Stage(stage, total, done)
        if self._bars is not None:
            self._tasks[stage] = self._bars.add_task(stage, total=total, completed=min(done, total), info="")
        elif self.mode == "log":
            self.print(f"{stage}: {total - done} of {total} epochs to run")

    def epoch_done(self, stage: str, epoch: int) -> None:
        if self._stage is None or self._stage.name != stage:
            return
        self._stage.done, self._stage.steps = epoch + 1, 0
        if stage in self._tasks:
            self._bars.update(self._tasks[stage], completed=epoch + 1, info=self._info())
        self._maybe_line()

    def stage_ended(self, stage: str) -> None:
        if stage in self._tasks:
            self._bars.update(self._tasks.pop(stage), visible=False)
        elif self.mode == "log" and self._stage is not None and self._stage.name == stage:
            self.print(f"{stage}: done in {_duration(time.perf_counter() - self._stage.started)}")
        self._stage = None

    def items(self, count: int) -> None:
        """A batch of ``count`` training items went through (called by the train split)."""
        stage = self._stage
        if stage is None:
            return
        stage.items += count
        stage.steps += 1
        if stage.name in self._tasks and stage.steps % 8 == 1:
            self._bars.update(self._tasks[stage.name], info=self._info())
        self._maybe_line()

    def logged(self, entry: dict[str, Any]) -> None:
        """The method logged values (``ctx.log``): shown at once, and printed when asked for."""
        if self._stage is not None and self._stage.name == entry["stage"]:
            self._stage.last = entry
            if entry["stage"] in self._tasks:
                self._bars.update(self._tasks[entry["stage"]], info=self._info())
        if self.log_losses:
            self.print(f"{entry['stage']} epoch {entry['epoch'] + 1}: {_losses(entry)}")
        else:
            self._maybe_line()

    # --- phases without epochs (feature extraction, encoding, scoring) -------------------------
    @contextlib.contextmanager
    def phase(self, name: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        """A bar (or start and end records) for a long step; yields ``advance(n)``."""
        started = time.perf_counter()
        if self._bars is not None:
            task = self._bars.add_task(name, total=total, info="")
            yield lambda n=1: self._bars.update(task, advance=n)
            self._bars.update(task, visible=False)
            return
        if self.mode == "log":
            self.print(f"{name}{f' ({total:,} items)' if total else ''}")
        yield lambda n=1: None
        if self.mode == "log":
            self.print(f"{name}: done in {_duration(time.perf_counter() - started)}")

    # --- internals ------------------------------------------------------------------------------
    def _info(self) -> str:
        stage = self._stage
        parts = [f"step {stage.steps}"] if stage.steps else []
        if stage.items:
            parts.append(f"{stage.rate():,.0f} items/s")
        if stage.last:
            parts.append(_losses(stage.last))
        return " · ".join(parts)

    def _maybe_line(self) -> None:
        if self.mode != "log" or self._stage is None:
            return
        now = time.perf_counter()
        if now - self._last_line >= self.interval:
            self._last_line = now
            self.print(self._stage.line())
