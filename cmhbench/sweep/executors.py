"""Where a sweep's jobs run.

local         one after another, in this process
local-gpus    one worker process per visible GPU, pinned with CUDA_VISIBLE_DEVICES (or ``--workers N``
              CPU workers where there is no GPU); each worker pulls the next job nobody holds
slurm         a Slurm job array through submitit (``pip install cmhbench[slurm]``), a parallelism cap,
              partition/time/GPU options; pre-empted or timed-out jobs are requeued and resume from
              their last checkpoint
submitit-local  the same submitit code path on this machine (submitit's LocalExecutor): for trying a
              cluster sweep before submitting it, and for the tests

Every executor ends in `jobs.execute_job`, so locks, skip-if-done, failure records and resume are
the same everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cmhbench.errors import CmhbenchError
from cmhbench.sweep.jobs import JobOutcome, execute_job, work_through
from cmhbench.sweep.manifest import sweeps_dir
from cmhbench.sweep.spec import Job

try:  # optional: only the slurm executors need submitit
    from submitit.helpers import Checkpointable as _Checkpointable
except ImportError:
    _Checkpointable = object

EXECUTORS = ("local", "local-gpus", "slurm", "submitit-local")
# what a job ended as, best first: when two workers report one job, the better report stands
_RANK = {"ran": 0, "failed": 1, "done-elsewhere": 2, "done": 3, "running-elsewhere": 4, "submitted": 5}


@dataclass
class ClusterOptions:
    partition: str | None = None
    time_min: int = 24 * 60
    gpus_per_job: int = 1
    cpus_per_job: int | None = None
    mem_gb: float | None = None
    max_parallel: int = 16
    wait: bool = True


def new_attempt() -> str:
    return uuid.uuid4().hex[:12]


def run_jobs(jobs: list[Job], executor: str, manifest: Path, *, workers: int | None = None,
             cluster: ClusterOptions | None = None,
             report: Callable[[JobOutcome], None] | None = None) -> list[JobOutcome]:
    """Run every job of a sweep with the named executor; one outcome per job, in job order."""
    attempt = new_attempt()
    if executor == "local":
        return work_through(jobs, attempt, report=report)
    if executor == "local-gpus":
        return _run_local_workers(jobs, manifest, attempt, workers, report)
    if executor in ("slurm", "submitit-local"):
        return _run_submitit(jobs, manifest, attempt, executor, cluster or ClusterOptions(), report)
    raise CmhbenchError(f"--executor {executor!r}: expected one of {', '.join(EXECUTORS)}")


# --- local-gpus: worker processes ------------------------------------------------------------
def visible_gpus() -> list[str]:
    """GPU ids as CUDA_VISIBLE_DEVICES names them (so pinning respects an outer restriction)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [part.strip() for part in listed.split(",") if part.strip() and part.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def _run_local_workers(jobs: list[Job], manifest: Path, attempt: str, workers: int | None,
                       report: Callable[[JobOutcome], None] | None) -> list[JobOutcome]:
    gpus = visible_gpus()
    if workers is None:
        if not gpus:
            raise CmhbenchError("--executor local-gpus: no GPU is visible; add --workers N to run N CPU "
                                "workers, or use --executor local")
        workers = len(gpus)
    if workers < 1:
        raise CmhbenchError(f"--workers {workers}: expected at least 1")
    threads = max(1, (os.cpu_count() or 1) // workers)
    processes = []
    for index in range(workers):
        env = dict(os.environ)
        env["CMHBENCH_TORCH_THREADS"] = str(threads)
        env["OMP_NUM_THREADS"] = str(threads)
        env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)] if gpus else ""
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "cmhbench.sweep.worker", str(manifest), "--attempt", attempt,
             "--offset", str(index * len(jobs) // workers)],
            stdout=subprocess.PIPE, text=True, env=env))
    outcomes: dict[str, JobOutcome] = {}
    guard = threading.Lock()

    def collect(process: subprocess.Popen) -> None:
        for line in process.stdout:
            if not line.startswith("{"):
                continue
            outcome = JobOutcome(**json.loads(line))
            with guard:
                _merge(outcomes, outcome)
                if report and outcome.status in ("ran", "failed"):
                    report(outcome)

    readers = [threading.Thread(target=collect, args=(p,), daemon=True) for p in processes]
    for thread in readers:
        thread.start()
    try:
        for process in processes:
            process.wait()
    except BaseException:
        for process in processes:
            process.terminate()
        raise
    for thread in readers:
        thread.join()
    for job in jobs:  # a worker that died outside a job (it should not) leaves its jobs unreported
        outcomes.setdefault(job.run_id, JobOutcome(job.run_id, job.label, "failed",
                                                   error="no worker reported this job"))
    return [outcomes[job.run_id] for job in jobs]


def _merge(outcomes: dict[str, JobOutcome], outcome: JobOutcome) -> None:
    current = outcomes.get(outcome.run_id)
    if current is None or _RANK[outcome.status] < _RANK[current.status]:
        outcomes[outcome.run_id] = outcome


# --- slurm and submitit-local -------------------------------------------------------------------
def _submitit():
    try:
        import submitit
    except ImportError:
        raise CmhbenchError("the slurm executors need submitit: pip install 'cmhbench[slurm]'") from None
    return submitit


class SweepTask(_Checkpointable):
    """One cluster job. Checkpointable: on pre-emption or time-out submitit calls ``checkpoint``,
    which requeues the same call; the rerun resumes from the run's last checkpoint."""

    def __init__(self, attempt: str):
        self.attempt = attempt

    def __call__(self, job: Job) -> dict[str, Any]:
        return execute_job(job, self.attempt, wait=True).as_dict()


def _run_submitit(jobs: list[Job], manifest: Path, attempt: str, executor: str,
                  cluster: ClusterOptions, report: Callable[[JobOutcome], None] | None) -> list[JobOutcome]:
    submitit = _submitit()
    folder = sweeps_dir(Path(manifest).parent.parent) / "submitit" / Path(manifest).stem
    backend = submitit.AutoExecutor(folder=folder, cluster="local" if executor == "submitit-local" else "slurm")
    parameters: dict[str, Any] = {"timeout_min": cluster.time_min, "gpus_per_node": cluster.gpus_per_job,
                                  "slurm_array_parallelism": cluster.max_parallel, "name": Path(manifest).stem}
    if executor == "submitit-local":
        parameters["gpus_per_node"] = min(cluster.gpus_per_job, len(visible_gpus()))
    if cluster.partition:
        parameters["slurm_partition"] = cluster.partition
    if cluster.cpus_per_job:
        parameters["cpus_per_task"] = cluster.cpus_per_job
    if cluster.mem_gb:
        parameters["mem_gb"] = cluster.mem_gb
    backend.update_parameters(**parameters)
    pending = [job for job in jobs if not Path(job.result_path).exists()]
    outcomes = {job.run_id: JobOutcome(job.run_id, job.label, "done") for job in jobs}
    if not pending:
        return list(outcomes.values())
    task = SweepTask(attempt)
    submitted = backend.map_array(task, pending)
    if not cluster.wait and executor == "slurm":
        for job, handle in zip(pending, submitted):
            outcomes[job.run_id] = JobOutcome(job.run_id, job.label, "submitted", error=f"slurm job {handle.job_id}")
        return [outcomes[job.run_id] for job in jobs]
    for job, handle in zip(pending, submitted):
        try:
            outcome = JobOutcome(**handle.result())
        except Exception as exc:  # the job process died (killed, out of memory, node failure)
            outcome = JobOutcome(job.run_id, job.label, "failed",
                                 error=f"{type(exc).__name__}: {_last_lines(str(exc))} (logs: {folder})")
        outcomes[job.run_id] = outcome
        if report and outcome.status in ("ran", "failed"):
            report(outcome)
    return [outcomes[job.run_id] for job in jobs]


def _last_lines(text: str, count: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-count:])
