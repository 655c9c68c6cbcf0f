"""`cmhbench status`: where each job of a sweep stands, read from the shared results folder only.

done         its result file exists
running      a live process holds its lock (on this machine or any sharing the folder)
failed       its last attempt raised; the state file keeps the error's last lines
interrupted  it started (a checkpoint or a 'running' state exists) but nobody holds it: killed or
             pre-empted; the next sweep resumes it from the checkpoint
pending      not started
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmhbench.results import ResultStore
from cmhbench.sweep.jobs import is_locked, read_state
from cmhbench.sweep.spec import Job
from cmhbench.train.context import PROGRESS_NAME

STATES = ("done", "running", "failed", "interrupted", "pending")


@dataclass
class JobStatus:
    job: Job
    state: str
    detail: str = ""
    error: str | None = None


def job_status(job: Job) -> JobStatus:
    results = job.request["results_dir"]
    if Path(job.result_path).exists():
        return JobStatus(job, "done", job.result_path)
    progress = _progress(results, job.run_id)
    state = read_state(results, job.run_id) or {}
    if is_locked(results, job.run_id):
        where = f"{state.get('host', '?')} pid {state.get('pid', '?')}"
        return JobStatus(job, "running", f"{where}{_describe(progress)}")
    if state.get("state") == "failed":
        return JobStatus(job, "failed", f"{state.get('host', '?')} at {state.get('since_utc', '?')}",
                         state.get("error"))
    if progress or state.get("state") == "running":
        return JobStatus(job, "interrupted", f"resumes{_describe(progress) or ' from the start'}")
    return JobStatus(job, "pending")


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


def sweep_status(jobs: list[Job]) -> list[JobStatus]:
    return [job_status(job) for job in jobs]


def counts(statuses: list[JobStatus]) -> dict[str, int]:
    return {state: sum(s.state == state for s in statuses) for state in STATES}
