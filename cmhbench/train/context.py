"""TrainContext: what a method's training loop gets from the harness.

Resume after a crash is the harness's job: ``ctx.epochs(n, stage)`` yields only the epochs still to
run in that stage, and after each finished epoch saves one checkpoint holding the method's full
state, every stage's progress and all random-number-generator states, so that a resumed run
continues bit-for-bit as an uninterrupted one would (on the same device and software).
"""

from __future__ import annotations

import contextlib
import random
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
    ):
        self.device = device
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        if precision == "auto":
            precision = "bf16" if device.type == "cuda" else "fp32"
        if precision not in ("bf16", "fp32"):
            raise CmhbenchError(f"precision {precision!r}: expected auto, bf16 or fp32")
        self.precision = precision
        self.quiet = quiet
        self.epoch_override = epoch_override
        self.progress_by_stage: dict[str, int] = {}
        self.history: list[dict[str, Any]] = []
        self.resumed_from: dict[str, int] | None = None
        self._method: Any = None
        self._progress: Progress | None = None

    # --- precision -------------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA (unless fp32 was asked for); a no-op on CPU."""
        if self.precision == "bf16" and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # --- epochs, checkpoints and resume ---------------------------------------------------
    def bind(self, method: Any) -> None:
        """Attach the method whose state goes into checkpoints; restore one if it exists."""
        self._method = method
        path = self.checkpoint_path
        if path is not None and path.exists():
            try:
                state = torch.load(path, map_location="cpu", weights_only=False)
            except Exception as exc:
                raise CmhbenchError(
                    f"checkpoint {path} cannot be read ({type(exc).__name__}); delete it to start over"
                ) from None
            method.load_state_dict(state["method"])  # CPU tensors: the method places them
            self.progress_by_stage = dict(state["progress"])
            self.history = list(state.get("history", []))
            self._restore_rng(state["rng"])
            self.resumed_from = dict(self.progress_by_stage)

    @property
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / CHECKPOINT_NAME if self.checkpoint_dir else None

    def num_epochs(self, published: int) -> int:
        """The epoch count to run: ``--epochs`` (or the protocol's budget) when set, else the method's."""
        return int(self.epoch_override) if self.epoch_override is not None else int(published)

    def epochs(self, n: int, stage: str = "train") -> Iterator[int]:
        """Yield the epoch numbers of ``stage`` that have not run yet; checkpoint after each."""
        done = self.progress_by_stage.get(stage, 0)
        task = None
        if self._progress is not None:
            task = self._progress.add_task(stage, total=n, completed=min(done, n))
        for epoch in range(done, n):
            yield epoch
            self.progress_by_stage[stage] = epoch + 1
            self.save_checkpoint()
            if task is not None:
                self._progress.update(task, advance=1, description=self._describe(stage))
        if task is not None:
            self._progress.update(task, visible=False)

    def save_checkpoint(self) -> None:
        if self.checkpoint_path is None or self._method is None:
            return
        state = {
            "method": self._method.state_dict(),
            "progress": dict(self.progress_by_stage),
            "history": list(self.history),
            "rng": self._capture_rng(),
        }
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(state, tmp)
        write_json_atomic(self.checkpoint_dir / PROGRESS_NAME, {  # a status hint; the checkpoint is the truth
            "progress": dict(self.progress_by_stage),
            "saved_utc": utc_now()}, durable=False)

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

