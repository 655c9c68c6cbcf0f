"""`cmhbench status`: where each job of a sweep stands, read from the shared results folder only.

done         its result file exists
running      a live process holds its lock (on this machine or any sharing the folder)
failed       its last attempt raised; the state file keeps the error's last lines
interrupted  it started (a checkpoint or a 'running' state exists) but nobody holds it: killed or
             pre-empted; the next sweep resumes it from the checkpoint
pending      not started, or waiting in Slurm's queue (a requeued task resumes from its checkpoint)
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmhbench.results import ResultStore
from cmhbench.results.run_status import PROGRESS_NAME
from cmhbench.results.lock import is_locked
from cmhbench.sweep.jobs import read_state
from cmhbench.sweep.spec import Job

STATES = ("done", "running", "failed", "interrupted", "pending")


@dataclass
class JobStatus:
    job: Job
    state: str
    detail: str = ""
    error: str | None = None


def job_status(job: Job, queued: str | None = None) -> JobStatus:
    """``queued``: what Slurm says of the job's array task while it holds it (see `slurm_queue`)."""
    results = job.request["results_dir"]
    if Path(job.result_path).exists():
        return JobStatus(job, "done", job.result_path)
    progress = _progress(results, job.run_id)
    state = read_state(results, job.run_id) or {}
    if is_locked(results, job.run_id):
        where = f"{state.get('host', '?')} pid {state.get('pid', '?')}"
        return JobStatus(job, "running", f"{where}{_describe(progress)}")
    if state.get("state") == "failed" and not queued:
        return JobStatus(job, "failed", f"{state.get('host', '?')} at {state.get('since_utc', '?')}",
                         state.get("error"))
    if queued:  # Slurm will start it (again): a requeued task resumes from its checkpoint
        return JobStatus(job, "pending", f"{queued}{'; resumes' + _describe(progress) if progress else ''}")
    if progress or state.get("state") == "running":
        return JobStatus(job, "interrupted", f"resumes{_describe(progress) or ' from the start'}")
    return JobStatus(job, "pending")


def slurm_queue(results: str | Path, sweep_name: str) -> dict[str, str]:
    """run_id -> "slurm task 12_3 PENDING (BeginTime)" for this sweep's array tasks that Slurm still
    holds; empty where nothing was submitted or Slurm's tools are not on this machine."""
    from cmhbench.sweep import slurm

    if shutil.which("squeue") is None:
        return {}
    found = {}
    for run_id, (submission, index, state, reason) in slurm.queued_run_ids(results, sweep_name).items():
        why = f" ({reason})" if reason and reason != "None" else ""
        found[run_id] = f"slurm task {submission.task(index)} {state}{why}"
    return found


def _progress(results: str, run_id: str) -> dict[str, Any] | None:
    path = ResultStore(results).checkpoint_dir(run_id) / PROGRESS_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _describe(progress: dict[str, Any] | None) -> str:
    if not progress:
        return ""
    stages = ", ".join(f"{stage} {done} epochs" for stage, done in progress["progress"].items())
    return f" after {stages} (checkpoint {progress['saved_utc']})"


def sweep_status(jobs: list[Job], queue: dict[str, str] | None = None) -> list[JobStatus]:
    return [job_status(job, (queue or {}).get(job.run_id)) for job in jobs]


def counts(statuses: list[JobStatus]) -> dict[str, int]:
    return {state: sum(s.state == state for s in statuses) for state in STATES}
