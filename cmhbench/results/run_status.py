"""Where one run stands, read from its results folder alone (torch-free): finished (its result
exists), in progress (its checkpoint's progress record, and whether a process holds its lock), or
unknown."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmhbench.errors import CmhbenchError
from cmhbench.results.lock import is_locked

PROGRESS_NAME = "progress.json"  # written beside each checkpoint by cmhbench.train.checkpoint


@dataclass
class RunStatus:
    run_id: str
    state: str  # done, running, interrupted
    result: Path | None = None
    #: per stage: epochs run and planned
    stages: dict[str, dict[str, int]] = field(default_factory=dict)
    last_log: dict[str, Any] | None = None
    saved_utc: str | None = None


def run_status(results_dir: str | Path, run_id_prefix: str) -> RunStatus:
    """The status of the one run whose run_id starts with ``run_id_prefix``."""
    root = Path(results_dir)
    prefix = run_id_prefix.strip().lower()
    if len(prefix) < 6 or not all(c in "0123456789abcdef" for c in prefix):
        raise CmhbenchError(f"--run {run_id_prefix!r}: expected a run_id or its first 6 or more hex digits")
    checkpoints = sorted(p for p in (root / ".checkpoints").glob(f"{prefix}*") if p.is_dir())
    results = sorted(p for p in root.glob(f"*/*/*-{prefix[:12]}*.json") if prefix[:12] in p.stem)
    if len(checkpoints) > 1:
        raise CmhbenchError(f"--run {run_id_prefix}: {len(checkpoints)} runs in {root} start so; give more digits")
    if not checkpoints:
        if len(results) > 1:
            raise CmhbenchError(f"--run {run_id_prefix}: {len(results)} results in {root} start so; give more digits")
        if results:
            return _finished(results[0])
        raise CmhbenchError(f"no run {run_id_prefix} in {root}: neither a result nor a checkpoint "
                            "(a run's id names its folder under RESULTS/.checkpoints/ while it runs, and ends "
                            "its result's file name, e.g. 32bits-seed0-RUNID.json)")
    folder = checkpoints[0]
    status = RunStatus(run_id=folder.name, state="running" if is_locked(root, folder.name) else "interrupted")
    try:
        record = json.loads((folder / PROGRESS_NAME).read_text())
    except (OSError, ValueError):
        return status  # no epoch finished yet
    planned = record.get("planned", {})
    status.stages = {stage: {"run": int(done), "planned": int(planned.get(stage, 0))}
                     for stage, done in record.get("progress", {}).items()}
    status.last_log, status.saved_utc = record.get("last_log"), record.get("saved_utc")
    return status


def _finished(path: Path) -> RunStatus:
    """A finished run: its epochs per stage and last logged losses, from its result."""
    from cmhbench.results.store import ResultStore

    result = ResultStore.read_typed(path)
    training = result.training or {}
    history = training.get("history") or []
    try:
        stages = {stage: {"run": int(count["run"]), "planned": int(count["planned"])}
                  for stage, count in (training.get("epochs") or {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError):  # a foreign or hand-edited record: not shown
        stages = {}
    last_log = history[-1] if isinstance(history, list) and history and isinstance(history[-1], dict) else None
    return RunStatus(run_id=result.run_id, state="done", result=path, stages=stages, last_log=last_log,
                     saved_utc=result.created_utc)
