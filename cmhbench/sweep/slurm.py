"""The `slurm` executor: the sweep's unfinished jobs as one Slurm job array, submitted with `sbatch`
and watched with `squeue`.

Nothing here reads Slurm's accounting (`sacct`): many small clusters run without it. What a job
came to is read from the results folder, the one record every executor shares: its result file
(done) or its state file (failed, with the error). `squeue` only says whether Slurm still holds a
task (pending, running, requeued); a task that has left the queue without a result was cancelled,
killed, timed out or ran out of memory, and the waiting sweep reports it failed with its log.

Each array task runs ``python -m cmhbench.sweep.worker MANIFEST --attempt A --slurm-tasks FILE``,
which takes the job at index ``SLURM_ARRAY_TASK_ID`` of FILE and runs it through `jobs.execute_job`
(lock, skip-if-done, failure record, resume from the last checkpoint). The array is submitted with
``--requeue``: a task pre-empted or requeued (``scontrol requeue``) starts again and resumes from its
checkpoint. Near its time limit Slurm signals the batch script, which requeues the task itself.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import atomic_path, write_json_atomic
from cmhbench.sweep.jobs import JobOutcome, read_state
from cmhbench.sweep.manifest import sweeps_dir
from cmhbench.sweep.spec import Job

# seconds between two looks at the queue while the sweep waits (the tests shorten it)
POLL_SECONDS = float(os.environ.get("CMHBENCH_SLURM_POLL_SECONDS", "10"))
# how long before its time limit a task is signalled to requeue itself (Slurm's resolution is ~60 s);
# tasks with a limit under four margins are not signalled (they would requeue themselves at once)
REQUEUE_MARGIN_SECONDS = 180
LOG_TAIL_LINES = 15


@dataclass
class Submission:
    """One `sbatch` of a sweep: the array's job id and which job each array index runs."""

    job_id: str
    run_ids: list[str]
    folder: Path  # holds the batch script, the task list and one log per array task

    def log_path(self, index: int) -> Path:
        return self.folder / f"task-{index}.log"

    def as_dict(self) -> dict:
        return {"job_id": self.job_id, "run_ids": self.run_ids, "folder": str(self.folder)}


def _slurm_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise CmhbenchError(f"--executor slurm: `{name}` is not on PATH; run the sweep from a machine "
                            "that can submit Slurm jobs (a login node)")
    return path


def _call(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_slurm_tool(args[0]), *args[1:]], capture_output=True, text=True, timeout=120)


def _must(result: subprocess.CompletedProcess, what: str) -> str:
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise CmhbenchError(f"{what}: `{shlex.join(result.args)}` failed: {detail[-1] if detail else 'no output'}")
    return result.stdout


# --- what the cluster offers ----------------------------------------------------------------------
def partition_resources(partition: str | None) -> tuple[str, list[str]]:
    """The partition's name (the cluster's default one when None) and its generic resources, as
    ``sinfo -o %G`` lists them per node group ("(null)" where a group has none)."""
    rows = [line.split("|", 1) for line in _must(_call("sinfo", "-h", "-o", "%P|%G"), "--partition").splitlines()
            if "|" in line]
    by_name: dict[str, list[str]] = {}
    default = None
    for name, gres in rows:
        if name.endswith("*"):
            name = default = name[:-1]
        by_name.setdefault(name, []).append(gres.strip())
    if partition is None:
        if default is None:
            raise CmhbenchError(f"--partition: the cluster has no default partition; name one of "
                                f"{', '.join(sorted(by_name)) or '(none listed by sinfo)'}")
        partition = default
    if partition not in by_name:
        raise CmhbenchError(f"--partition {partition}: no such partition; sinfo lists "
                            f"{', '.join(sorted(by_name)) or 'none'}")
    return partition, by_name[partition]


def has_gpus(gres: list[str]) -> bool:
    return any("gpu" in entry.lower() for entry in gres)


def gpus_to_request(asked: int | None, partition: str | None) -> tuple[str, int]:
    """The partition and GPU count to submit with: as asked, or by default one GPU where the
    partition has GPUs and none where it has not. A request the partition cannot meet is an error
    here, before anything is submitted."""
    name, gres = partition_resources(partition)
    if asked is None:
        return name, 1 if has_gpus(gres) else 0
    if asked < 0:
        raise CmhbenchError(f"--gpus-per-job {asked}: expected 0 or more")
    if asked > 0 and not has_gpus(gres):
        raise CmhbenchError(f"--gpus-per-job {asked}: partition {name} has no GPUs (sinfo -o %G lists "
                            f"{', '.join(sorted(set(gres)))}); use --gpus-per-job 0 or a partition with GPUs")
    return name, asked


# --- submitting -------------------------------------------------------------------------------------
def batch_script(*, name: str, count: int, partition: str, gpus: int, time_min: int, cpus: int | None,
                 mem_gb: float | None, max_parallel: int, folder: Path, worker_command: list[str]) -> str:
    """The sbatch script of the array. Slurm signals the batch shell (B:USR1) before the time limit;
    the shell then requeues its own task, which resumes from its checkpoint when it runs again."""
    directives = [f"--job-name={name}", f"--array=0-{count - 1}%{max_parallel}", f"--partition={partition}",
                  f"--time={time_min}", f"--output={folder / 'task-%a.log'}", "--open-mode=append",
                  "--requeue"]
    if time_min * 60 >= 4 * REQUEUE_MARGIN_SECONDS:
        directives.append(f"--signal=B:USR1@{REQUEUE_MARGIN_SECONDS}")
    if gpus:
        directives.append(f"--gpus-per-node={gpus}")
    if cpus:
        directives.append(f"--cpus-per-task={cpus}")
    if mem_gb:
        directives.append(f"--mem={int(mem_gb * 1024)}M")
    lines = ["#!/bin/bash", *(f"#SBATCH {d}" for d in directives), "",
             "# Written by `cmhbench sweep --executor slurm`: one array task per unfinished job.",
             'echo "[cmhbench] task ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} on $(hostname),'
             ' start ${SLURM_RESTART_COUNT:-0}, $(date -u +%FT%TZ)"',
             'requeue_self() {',
             '    echo "[cmhbench] near the time limit: requeueing (the rerun resumes from the checkpoint)"',
             '    scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
             '}',
             "trap requeue_self USR1",
             f"{shlex.join(worker_command)} &",
             "worker=$!",
             # `wait` returns early when the trap runs; wait again for the worker's own status
             'while true; do wait "$worker"; status=$?; kill -0 "$worker" 2>/dev/null || exit "$status"; done',
             ""]
    return "\n".join(lines)


def submit(jobs: list[Job], manifest: Path, attempt: str, *, partition: str | None, gpus_per_job: int | None,
           time_min: int, cpus_per_job: int | None, mem_gb: float | None, max_parallel: int) -> Submission:
    partition, gpus = gpus_to_request(gpus_per_job, partition)
    if max_parallel < 1:
        raise CmhbenchError(f"--max-parallel {max_parallel}: expected at least 1")
    folder = sweeps_dir(manifest.parent.parent) / "slurm" / manifest.stem / attempt
    folder.mkdir(parents=True, exist_ok=True)
    tasks_file = folder / "tasks.json"
    run_ids = [job.run_id for job in jobs]
    write_json_atomic(tasks_file, run_ids)
    worker = [sys.executable, "-m", "cmhbench.sweep.worker", str(manifest.resolve()), "--attempt", attempt,
              "--slurm-tasks", str(tasks_file.resolve())]
    script = folder / "job.sbatch"
    with atomic_path(script) as tmp:
        tmp.write_text(batch_script(
            name=f"cmhbench-{manifest.stem}", count=len(jobs), partition=partition, gpus=gpus, time_min=time_min,
            cpus=cpus_per_job, mem_gb=mem_gb, max_parallel=max_parallel, folder=folder.resolve(),
            worker_command=worker), encoding="utf-8")
    # --export=ALL: the tasks see this environment (virtual environment, PYTHONPATH, CMHBENCH_HOME)
    answer = _must(_call("sbatch", "--parsable", "--export=ALL", f"--chdir={Path.cwd()}", str(script)), "sbatch")
    submission = Submission(answer.strip().split(";")[0], run_ids, folder)
    write_json_atomic(folder / "submission.json", submission.as_dict())
    return submission


# --- watching -----------------------------------------------------------------------------------
def queued_tasks(job_id: str) -> dict[int, tuple[str, str]] | None:
    """Array index -> (Slurm state, reason), e.g. ("PENDING", "BeginTime"), of the array's tasks Slurm
    still holds; None when the queue could not be read (the caller decides nothing that round)."""
    result = _call("squeue", "-h", "-r", "-j", job_id, "-o", "%i|%T|%r")
    if result.returncode != 0:
        # a job that has left the controller's memory entirely is "invalid": nothing is queued
        return {} if "Invalid job id" in result.stderr else None
    tasks = {}
    for line in result.stdout.splitlines():
        task, _, rest = line.partition("|")
        state, _, reason = rest.partition("|")
        _, _, index = task.partition("_")
        if index.isdigit():
            tasks[int(index)] = (state, reason)
    return tasks


def _seconds_of(result_path: str) -> float:
    try:
        timings = json.loads(Path(result_path).read_text(encoding="utf-8"))["timings"]
        return float(sum(v for v in timings.values() if isinstance(v, (int, float))))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 0.0


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no log written)"
    return "\n".join(lines[-LOG_TAIL_LINES:])


def wait_for(submission: Submission, jobs: list[Job], attempt: str, *,
             report: Callable[[JobOutcome], None] | None = None,
             poll_seconds: float = POLL_SECONDS) -> dict[str, JobOutcome]:
    """Wait until every task of the array has a result or has left Slurm's queue; an outcome per job."""
    by_run_id = {job.run_id: job for job in jobs}
    remaining = dict(enumerate(submission.run_ids))
    outcomes: dict[str, JobOutcome] = {}
    while remaining:
        queued = queued_tasks(submission.job_id)  # read before the results: see the note below
        for index, run_id in list(remaining.items()):
            job = by_run_id[run_id]
            # A task writes its result before it leaves the queue, so a task absent from a queue read
            # *earlier* than this look at its result either has its result now or never will.
            if Path(job.result_path).exists():
                outcome = JobOutcome(run_id, job.label, "ran", _seconds_of(job.result_path))
            elif queued is not None and index not in queued:
                state = read_state(job.request["results_dir"], run_id) or {}
                if state.get("state") == "failed" and state.get("attempt") == attempt:
                    error = state.get("error")
                else:
                    error = (f"slurm task {submission.job_id}_{index} left the queue without a result "
                             f"(cancelled, killed, timed out or out of memory); the last lines of its log "
                             f"{submission.log_path(index)}:\n{_log_tail(submission.log_path(index))}")
                outcome = JobOutcome(run_id, job.label, "failed", error=error)
            else:
                continue
            outcomes[run_id] = outcome
            del remaining[index]
            if report:
                report(outcome)
        if remaining:
            time.sleep(poll_seconds)
    return outcomes


def find_submissions(results: str | Path, sweep_name: str) -> list[Submission]:
    """Every array submitted for the sweep, oldest first (for `cmhbench status`)."""
    folder = sweeps_dir(results) / "slurm"
    found = []
    for path in sorted(folder.glob(f"{sweep_name}/*/submission.json"), key=lambda p: p.stat().st_mtime):
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
            found.append(Submission(str(content["job_id"]), list(content["run_ids"]), path.parent))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found
