"""Running one job of a sweep safely beside other workers, other sweeps and other machines.

Coordination lives in the results folder, so it works wherever that folder is shared:

- ``.jobs/<run_id>.lock``: the run's exclusive lock (cmhbench.results.lock), held while the job runs,
  the same one `cmhbench run` takes. A worker that finds the lock taken leaves the job to its
  holder; before it exits it waits on that lock and runs the job itself only if no result appeared
  (the holder died).
- ``.jobs/<run_id>.json``: the job's last state, ``running`` (host, pid, start) or ``failed``
  (with the error's last lines and the attempt that failed). A finished job has no state file:
  its result file is the record.
- the result file is written atomically by the runner, and the run's per-epoch checkpoints make a
  rerun of an interrupted job resume where it stopped.

A failure is recorded and reported, never raised: one broken job does not stop the others.
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import Timeout

from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import write_json_atomic
from cmhbench.results.lock import acquire_run_lock, jobs_dir, release_run_lock
from cmhbench.results.provenance import utc_now
from cmhbench.sweep.spec import Job

ERROR_TAIL_LINES = 25


@dataclass
class JobOutcome:
    run_id: str
    label: str
    status: str  # "ran", "done" (result existed), "running-elsewhere", "done-elsewhere", "failed"
    seconds: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def state_path(results: str | Path, run_id: str) -> Path:
    return jobs_dir(results) / f"{run_id}.json"


def read_state(results: str | Path, run_id: str) -> dict[str, Any] | None:
    try:
        return json.loads(state_path(results, run_id).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write_state(job: Job, attempt: str, state: str, **details: Any) -> None:
    """The job's state file: who (host, pid), when, in which attempt, and any details."""
    write_json_atomic(state_path(job.request["results_dir"], job.run_id), {
        "state": state, "label": job.label, "host": socket.gethostname(), "pid": os.getpid(),
        "since_utc": utc_now(), "attempt": attempt, **details})


def execute_job(job: Job, attempt: str, *, wait: bool = False) -> JobOutcome:
    """Run ``job`` unless its result exists or another live process holds it.

    ``attempt`` names this sweep invocation: a job that already failed in the same attempt is not
    retried by a second worker (it would fail again), but a new invocation retries it.
    With ``wait`` the call blocks until a running holder lets go, then re-checks.
    """
    results = job.request["results_dir"]
    if Path(job.result_path).exists():
        return JobOutcome(job.run_id, job.label, "done")
    try:
        lock = acquire_run_lock(results, job.run_id, timeout=-1 if wait else 0)
    except Timeout:
        return JobOutcome(job.run_id, job.label, "running-elsewhere")
    try:
        if Path(job.result_path).exists():  # finished by someone while we were not holding the lock
            return JobOutcome(job.run_id, job.label, "done")
        previous = read_state(results, job.run_id)
        if previous and previous.get("state") == "failed" and previous.get("attempt") == attempt:
            return JobOutcome(job.run_id, job.label, "failed", error=previous.get("error"))
        _write_state(job, attempt, "running")
        started = time.perf_counter()
        try:
            from cmhbench.runner import run

            run(job.run_request(), hold_lock=False)  # this worker holds the run's lock already
        except Exception as exc:
            # a user error (a bad option, a missing file) says it all in its one line; a crash keeps its traceback
            error = (f"error: {exc}" if isinstance(exc, CmhbenchError)
                     else "".join(traceback.format_exc().splitlines(keepends=True)[-ERROR_TAIL_LINES:]))
            _write_state(job, attempt, "failed", error=error)
            return JobOutcome(job.run_id, job.label, "failed", time.perf_counter() - started, error)
        state_path(results, job.run_id).unlink(missing_ok=True)
        return JobOutcome(job.run_id, job.label, "ran", time.perf_counter() - started)
    finally:
        release_run_lock(lock, Path(job.result_path).exists())


def work_through(jobs: list[Job], attempt: str, *, offset: int = 0, report=None) -> list[JobOutcome]:
    """One worker's loop: every job once (starting at ``offset`` so that workers spread out), then
    a second, waiting pass over the jobs that others held, in case a holder died."""
    order = jobs[offset % len(jobs):] + jobs[:offset % len(jobs)] if jobs else []
    outcomes: dict[str, JobOutcome] = {}
    for job in order:
        outcome = execute_job(job, attempt)
        outcomes[job.run_id] = outcome
        if report:
            report(outcome)
    for job in order:
        if outcomes[job.run_id].status == "running-elsewhere":
            outcome = execute_job(job, attempt, wait=True)
            if outcome.status == "done":  # the holder finished it
                outcome = JobOutcome(job.run_id, job.label, "done-elsewhere")
            outcomes[job.run_id] = outcome
            if report:
                report(outcome)
    return [outcomes[job.run_id] for job in jobs]
