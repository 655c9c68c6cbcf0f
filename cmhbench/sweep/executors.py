"""Where a sweep's jobs run.

local         one after another, in this process
local-gpus    one worker process per visible GPU, pinned with CUDA_VISIBLE_DEVICES (or ``--workers N``
              CPU workers where there is no GPU); each worker pulls the next job nobody holds
slurm         one Slurm job array (sbatch, watched with squeue; no accounting needed), a parallelism
              cap, partition/time/CPU/memory/GPU options; pre-empted, requeued or timed-out jobs run
              again and resume from their last checkpoint (see `cmhbench.sweep.slurm`)

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
from cmhbench.sweep.jobs import JobOutcome, work_through
from cmhbench.sweep.spec import Job

EXECUTORS = ("local", "local-gpus", "slurm")
# what a job ended as, best first: when two workers report one job, the better report stands
_RANK = {"ran": 0, "failed": 1, "done-elsewhere": 2, "done": 3, "running-elsewhere": 4, "submitted": 5}


@dataclass
class ClusterOptions:
    partition: str | None = None
    time_min: int = 24 * 60
    gpus_per_job: int | None = None  # None: one where the partition has GPUs, else none
    cpus_per_job: int | None = None
    mem_gb: float | None = None
    max_parallel: int = 16
    wait: bool = True
    on_submitted: Callable[[Any], None] | None = None  # told each slurm.Submission once sbatch accepted it
    on_held: Callable[[list[str]], None] | None = None  # told the tasks an earlier submission still queues


def new_attempt() -> str:
    return uuid.uuid4().hex[:12]


def run_jobs(jobs: list[Job], executor: str, manifest: Path, *, workers: int | None = None,
             threads: int | None = None, cluster: ClusterOptions | None = None,
             report: Callable[[JobOutcome], None] | None = None) -> list[JobOutcome]:
    """Run every job of a sweep with the named executor; one outcome per job, in job order. ``threads``:
    CPU threads per job (default: torch's in-process, the cores divided among local workers, a Slurm
    task's CPUs)."""
    attempt = new_attempt()
    if executor == "local":
        if threads:
            import torch

            torch.set_num_threads(threads)  # recorded in each result's environment.threads
        return work_through(jobs, attempt, report=report)
    if executor == "local-gpus":
        return _run_local_workers(jobs, manifest, attempt, workers, threads, report)
    if executor == "slurm":
        return _run_slurm(jobs, manifest, attempt, cluster or ClusterOptions(), threads, report)
    raise CmhbenchError(f"--executor {executor!r}: expected one of {', '.join(EXECUTORS)}")


# --- local-gpus: worker processes ------------------------------------------------------------
def visible_gpus() -> list[str]:
    """GPU ids as CUDA_VISIBLE_DEVICES names them (so pinning respects an outer restriction)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [part.strip() for part in listed.split(",") if part.strip() and part.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def _run_local_workers(jobs: list[Job], manifest: Path, attempt: str, workers: int | None, threads: int | None,
                       report: Callable[[JobOutcome], None] | None) -> list[JobOutcome]:
    gpus = visible_gpus()
    if workers is None:
        if not gpus:
            raise CmhbenchError("--executor local-gpus: no GPU is visible; add --workers N to run N CPU "
                                "workers, or use --executor local")
        workers = len(gpus)
    if workers < 1:
        raise CmhbenchError(f"--workers {workers}: expected at least 1")
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
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


# --- slurm ------------------------------------------------------------------------------------------
def _run_slurm(jobs: list[Job], manifest: Path, attempt: str, cluster: ClusterOptions, threads: int | None,
               report: Callable[[JobOutcome], None] | None) -> list[JobOutcome]:
    from cmhbench.sweep import slurm

    outcomes = {job.run_id: JobOutcome(job.run_id, job.label, "done") for job in jobs}
    pending = {job.run_id: job for job in jobs if not Path(job.result_path).exists()}
    for job in jobs if report else ():
        if job.run_id not in pending:
            report(outcomes[job.run_id])
    if not pending:
        return list(outcomes.values())
    # tasks an earlier invocation submitted and Slurm still holds are waited for, not submitted again
    held = slurm.held_tasks(manifest.parent.parent, manifest.stem)
    held_pending = [held[run_id] for run_id in pending if run_id in held]
    new = [job for run_id, job in pending.items() if run_id not in held]
    submissions = slurm.submit(new, manifest, attempt, partition=cluster.partition,
                               gpus_per_job=cluster.gpus_per_job, time_min=cluster.time_min,
                               cpus_per_job=cluster.cpus_per_job, mem_gb=cluster.mem_gb,
                               max_parallel=cluster.max_parallel, threads=threads) if new else []
    watched = [(submission, index) for submission in submissions for index in range(len(submission.run_ids))]
    watched += held_pending
    if cluster.on_submitted:
        for submission in submissions:
            cluster.on_submitted(submission)
    if cluster.on_held and held_pending:
        cluster.on_held(sorted(submission.task(index) for submission, index in held_pending))
    if not cluster.wait:
        for submission, index in watched:
            job = pending[submission.run_ids[index]]
            outcomes[job.run_id] = JobOutcome(job.run_id, job.label, "submitted",
                                              error=f"slurm task {submission.task(index)}")
    else:
        outcomes.update(slurm.wait_for(watched, list(pending.values()), report=report))
    return [outcomes[job.run_id] for job in jobs]
