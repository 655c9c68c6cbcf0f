"""One process at a time per run: an exclusive lock per run_id in the results folder.

``<results>/.jobs/<run_id>.lock`` is an ``flock``: the kernel drops it when its holder dies (even by
SIGKILL), so a killed run never blocks its rerun. `cmhbench run` and every sweep worker take the
same lock, so two identical runs started at once train once: the second waits, then finds the
result. The lock file is removed once the run's result exists (what a finished sweep or run leaves
is its result, not its locks); a process still waiting on the removed file re-checks the result
after it gets the lock, so the removal never lets a run train twice.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock


def jobs_dir(results: str | Path) -> Path:
    return Path(results) / ".jobs"


def lock_path(results: str | Path, run_id: str) -> Path:
    return jobs_dir(results) / f"{run_id}.lock"


def run_lock(results: str | Path, run_id: str) -> FileLock:
    """The run's lock (not yet acquired); ``acquire(timeout=0)`` raises ``filelock.Timeout`` when held."""
    path = lock_path(results, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path), timeout=0)


def release_run_lock(lock: FileLock, result_exists: bool) -> None:
    """Let go of the lock; remove its file when the run is finished (its result exists)."""
    if result_exists:
        Path(lock.lock_file).unlink(missing_ok=True)  # removed while still held: see the module docstring
    lock.release()
