"""Checkpoint files and random-number-generator state: what lets a killed run continue bit for bit."""

from __future__ import annotations

import hashlib
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import atomic_path, write_json_atomic
from cmhbench.results.provenance import utc_now
from cmhbench.results.run_status import PROGRESS_NAME

CHECKPOINT_NAME = "checkpoint.pt"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def stage_seed(seed: int, stage: str) -> int:
    """A seed of its own for a stage that must not depend on what earlier stages drew."""
    return int(hashlib.sha256(f"{seed}:{stage}".encode()).hexdigest()[:15], 16)


def capture_rng(generator: torch.Generator) -> dict[str, Any]:
    rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
           "generator": generator.get_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def restore_rng(rng: dict[str, Any], generator: torch.Generator) -> None:
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    generator.set_state(rng["generator"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def read_checkpoint(path: Path, run_id: str | None) -> dict[str, Any]:
    """The checkpoint at ``path``, refused when it cannot be read or belongs to another run."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise CmhbenchError(f"checkpoint {path} cannot be read ({type(exc).__name__}); delete it to start over") from None
    owner = state.get("run_id") if isinstance(state, dict) else None
    if run_id is not None and owner != run_id:
        raise CmhbenchError(
            f"checkpoint {path} belongs to run {str(owner)[:12]}…, not to this run {run_id[:12]}…; it was copied "
            "or moved here: delete it to start this run afresh")
    return state


def write_checkpoint(path: Path, state: dict[str, Any], method_name: str) -> None:
    with atomic_path(path) as tmp:
        try:
            torch.save(state, tmp)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise CmhbenchError(_unsaveable(method_name, state["method"], exc)) from None


def write_progress(folder: Path, progress: dict[str, int], planned: dict[str, int],
                   last: dict[str, Any] | None) -> None:
    """A status hint beside the checkpoint (the checkpoint is the truth)."""
    write_json_atomic(folder / PROGRESS_NAME, {"progress": dict(progress), "planned": dict(planned),
                                               "last_log": last, "saved_utc": utc_now()}, durable=False)


def _unsaveable(method_name: str, method_state: Any, exc: BaseException) -> str:
    """One line naming the method and the entry of its state_dict() that cannot be saved."""
    culprit = "its state_dict()"
    if isinstance(method_state, dict):
        for key, value in method_state.items():
            try:
                pickle.dumps(value)
            except Exception:  # noqa: BLE001 - any failure names this entry
                culprit = f"state_dict()[{key!r}] (a {type(value).__name__})"
                break
    return (f"method {method_name}: {culprit} cannot be saved in a checkpoint ({type(exc).__name__}: {exc}); "
            "a state holds tensors, numbers, strings and lists or dicts of them")
