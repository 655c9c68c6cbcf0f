"""One process at a time per run: an exclusive lock per run_id in the results folder.

``<results>/.jobs/<run_id>.lock`` is an ``flock``: the kernel drops it when its holder dies (even by
SIGKILL), so a killed run never blocks its rerun. `cmhbench run` and every sweep worker take the
same lock, so two identical runs started at once train once: the second waits, then finds the
result. A holder removes the lock file as it lets go, finished or failed (what a sweep or a run
leaves is its result, not its locks); a process that wins the lock on a file removed meanwhile
takes it again on the current file and then re-checks the result, so the removal never lets a run
train twice. Only a killed holder leaves its file, which the next run of that job removes.
"""

from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock, Timeout

from cmhbench.errors import CmhbenchError


def jobs_dir(results: str | Path) -> Path:
    return Path(results) / ".jobs"


def lock_path(results: str | Path, run_id: str) -> Path:
    return jobs_dir(results) / f"{run_id}.lock"


def run_lock(results: str | Path, run_id: str) -> FileLock:
    """The run's lock (not yet acquired); ``acquire(timeout=0)`` raises ``filelock.Timeout`` when held."""
    path = lock_path(results, run_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CmhbenchError(f"--results {results}: cannot create {path.parent} ({exc.strerror})") from None
    return FileLock(str(path), timeout=0)


def acquire_run_lock(results: str | Path, run_id: str, timeout: float) -> FileLock:
    """The run's lock, acquired (``filelock.Timeout`` when another process holds it past
    ``timeout``; -1 waits). A holder removes the file as it lets go, so a lock won on a file that is
    no longer the one at the path is let go and taken again on the current one: two processes can
    never both hold the run."""
    while True:
        lock = run_lock(results, run_id)
        try:
            lock.acquire(timeout=timeout)
        except Timeout:  # held by another process (a TimeoutError, so an OSError too)
            raise
        except OSError as exc:  # a read-only results folder
            raise CmhbenchError(f"--results {results}: cannot create the run's lock {lock.lock_file} "
                                f"({exc.strerror})") from None
        if _holds_current_file(lock):
            return lock
        lock.release()


def _holds_current_file(lock: FileLock) -> bool:
    fd = getattr(getattr(lock, "_context", None), "lock_file_fd", None)
    if fd is None:  # a filelock without the attribute: trust it (files are then kept, see below)
        return True
    try:
        return os.fstat(fd).st_ino == os.stat(lock.lock_file).st_ino
    except FileNotFoundError:
        return False


def release_run_lock(lock: FileLock, result_exists: bool = True) -> None:
    """Let go of the lock and remove its file (finished or failed, a run leaves no lock behind);
    where the lock's file cannot be compared (see `acquire_run_lock`) it is removed only once the
    run's result exists."""
    try:
        if result_exists or getattr(getattr(lock, "_context", None), "lock_file_fd", None) is not None:
            Path(lock.lock_file).unlink(missing_ok=True)  # removed while still held: see acquire_run_lock
    except OSError:
        pass  # a file we may not remove (a shared folder) is left; the lock is released all the same
    finally:
        lock.release()


def is_locked(results: str | Path, run_id: str) -> bool:
    """Whether a live process holds the run's lock (probing takes it for an instant; a lock file
    that does not exist is not created by asking)."""
    if not lock_path(results, run_id).exists():
        return False
    lock = run_lock(results, run_id)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False
