"""The `slurm` executor: the sweep's unfinished jobs as a Slurm job array (several beyond 1,000 jobs),
submitted with `sbatch` and watched with `squeue`.

Nothing here reads Slurm's accounting (`sacct`): many small clusters run without it. What a job
came to is read from the results folder, the one record every executor shares: its result file
(done) or its state file (failed, with the error). `squeue` only says whether Slurm still holds a
task (pending, running, requeued); a task that has left the queue without a result was cancelled,
killed, timed out or ran out of memory, and the waiting sweep reports it failed with its log. A
sweep run again while an earlier array still has tasks in the queue waits for them rather than
submitting them twice.

Each array task runs ``python -m cmhbench.sweep.worker --attempt A --slurm-tasks FILE``, which
takes the job at index ``SLURM_ARRAY_TASK_ID`` of FILE and runs it through `jobs.execute_job`
(lock, skip-if-done, failure record, resume from the last checkpoint). The array is submitted with
``--requeue``: a task pre-empted or requeued (``scontrol requeue``) starts again and resumes from its
checkpoint. Near its time limit (limits of 12 minutes or more) Slurm signals the batch script, which
then requeues the task itself. Relative paths in the jobs resolve as here: the tasks start in the
folder the sweep was started from (``--chdir``), which the compute nodes must share.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import atomic_path, write_json_atomic
from cmhbench.sweep.jobs import JobOutcome, read_state
from cmhbench.sweep.manifest import sweeps_dir
from cmhbench.sweep.spec import Job

# seconds between two looks at the queue while the sweep waits (the tests shorten it)
POLL_SECONDS = float(os.environ.get("CMHBENCH_SLURM_POLL_SECONDS", "10"))
# how long a task must stay out of the queue with no result before it counts as failed (see wait_for)
GRACE_SECONDS = float(os.environ.get("CMHBENCH_SLURM_GRACE_SECONDS", "60"))
# tasks per array: Slurm's default MaxArraySize (1001) allows indices 0..1000; larger sweeps are
# submitted as several arrays
MAX_ARRAY_TASKS = 1000
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
    attempt: str = ""  # the sweep invocation that submitted it

    def log_path(self, index: int) -> Path:
        return self.folder / f"task-{index}.log"

    def task(self, index: int) -> str:
        return f"{self.job_id}_{index}"

    def as_dict(self) -> dict:
        return {"job_id": self.job_id, "run_ids": self.run_ids, "folder": str(self.folder), "attempt": self.attempt}


def _slurm_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise CmhbenchError(f"--executor slurm: `{name}` is not on PATH; run the sweep from a machine "
                            "that can submit Slurm jobs (a login node)")
    return path


def check_tools() -> None:
    """The Slurm commands a sweep needs, before anything else is done."""
    for name in ("sinfo", "sbatch", "squeue"):
        _slurm_tool(name)


def _call(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_slurm_tool(args[0]), *args[1:]], capture_output=True, text=True, timeout=120)


def _call_or_none(*args: str) -> subprocess.CompletedProcess | None:
    """For the reads a waiting sweep repeats: a controller that does not answer in time is not fatal."""
    try:
        return _call(*args)
    except (subprocess.TimeoutExpired, OSError):
        return None


def _must(result: subprocess.CompletedProcess, what: str) -> str:
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise CmhbenchError(f"{what}: `{shlex.join(result.args)}` failed: {detail[-1] if detail else 'no output'}")
    return result.stdout


# --- what the cluster offers ----------------------------------------------------------------------
@dataclass
class Partition:
    """One partition as ``sinfo -o %P|%G|%l`` lists it, a line per node group."""

    name: str
    gres: list[str]  # generic resources per node group ("(null)" where a group has none)
    limits: list[float | None]  # time limits in minutes per node group (None: no limit)


def partition_info(partition: str | None) -> Partition:
    """The named partition (the cluster's default one when None), from one `sinfo`."""
    listing = _must(_call("sinfo", "-h", "-o", "%P|%G|%l"), "--partition")
    groups: dict[str, Partition] = {}
    default = None
    for line in listing.splitlines():
        if "|" not in line:
            continue
        name, gres, limit = (line.split("|") + [""])[:3]
        if name.endswith("*"):
            name = default = name[:-1]
        group = groups.setdefault(name, Partition(name, [], []))
        group.gres.append(gres.strip())
        group.limits.append(minutes_of(limit))
    if partition is None:
        if default is None:
            raise CmhbenchError(f"--partition: the cluster has no default partition; name one of "
                                f"{', '.join(sorted(groups)) or '(none listed by sinfo)'}")
        partition = default
    if partition not in groups:
        raise CmhbenchError(f"--partition {partition}: no such partition; sinfo lists "
                            f"{', '.join(sorted(groups)) or 'none'}")
    return groups[partition]


def has_gpus(gres: list[str]) -> bool:
    return any("gpu" in entry.lower() for entry in gres)


def gpus_to_request(asked: int | None, partition: str | Partition | None) -> tuple[str, int]:
    """The partition and GPU count to submit with: as asked, or by default one GPU where the
    partition has GPUs and none where it has not. A request the partition cannot meet is an error
    here, before anything is submitted."""
    info = partition if isinstance(partition, Partition) else partition_info(partition)
    if asked is None:
        return info.name, 1 if has_gpus(info.gres) else 0
    if asked < 0:
        raise CmhbenchError(f"--gpus-per-job {asked}: expected 0 or more")
    if asked > 0 and not has_gpus(info.gres):
        raise CmhbenchError(f"--gpus-per-job {asked}: partition {info.name} has no GPUs (sinfo -o %G lists "
                            f"{', '.join(sorted(set(info.gres)))}); use --gpus-per-job 0 or a partition with GPUs")
    return info.name, asked


def minutes_of(limit: str) -> float | None:
    """Slurm's time-limit notation ("infinite", "30:00", "2:00:00", "1-00:00:00") in minutes; None
    for no limit."""
    limit = limit.strip()
    if limit in ("infinite", "UNLIMITED", "n/a", ""):
        return None
    days, _, clock = limit.rpartition("-")
    parts = [float(p) for p in clock.split(":")]
    seconds = {1: lambda p: p[0] * 60, 2: lambda p: p[0] * 60 + p[1],
               3: lambda p: p[0] * 3600 + p[1] * 60 + p[2]}[len(parts)](parts)
    return (float(days or 0) * 86400 + seconds) / 60


def check_time_limit(partition: Partition, time_min: int) -> None:
    """A job asking for more time than the partition allows may wait in the queue forever
    (PartitionTimeLimit): refuse it before submitting."""
    finite = [limit for limit in partition.limits if limit is not None]
    if time_min < 1:
        raise CmhbenchError(f"--time {time_min}: expected at least 1 minute")
    if finite and len(finite) == len(partition.limits) and time_min > max(finite):
        raise CmhbenchError(f"--time {time_min}: partition {partition.name} allows at most {max(finite):g} minutes "
                            "(sinfo -o %l); ask for less")


# --- submitting -------------------------------------------------------------------------------------
def batch_script(*, count: int, partition: str, gpus: int, time_min: int, cpus: int | None,
                 mem_gb: float | None, max_parallel: int, worker_command: list[str]) -> str:
    """The sbatch script of the array. Slurm signals the batch shell (B:USR1) before the time limit;
    the shell then requeues its own task, which resumes from its checkpoint when it runs again.
    The job's name and log path go on sbatch's command line (a directive line cannot quote them)."""
    directives = [f"--array=0-{count - 1}%{max_parallel}", f"--partition={partition}", f"--time={time_min}",
                  "--open-mode=append", "--requeue"]
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
           time_min: int, cpus_per_job: int | None, mem_gb: float | None, max_parallel: int,
           threads: int | None = None) -> list[Submission]:
    """Submit ``jobs`` as job arrays of at most MAX_ARRAY_TASKS tasks; every request the cluster
    cannot meet is refused before the first `sbatch`."""
    info = partition_info(partition)
    partition, gpus = gpus_to_request(gpus_per_job, info)
    check_time_limit(info, time_min)
    if max_parallel < 1:
        raise CmhbenchError(f"--max-parallel {max_parallel}: expected at least 1")
    submissions = []
    for first in range(0, len(jobs), MAX_ARRAY_TASKS):
        chunk = jobs[first:first + MAX_ARRAY_TASKS]
        folder = sweeps_dir(manifest.parent.parent) / "slurm" / manifest.stem / f"{attempt}-{first // MAX_ARRAY_TASKS}"
        folder.mkdir(parents=True, exist_ok=True)
        # the tasks read their jobs from here, not from the manifest, which a later sweep of the same
        # name may rewrite while these wait in the queue
        tasks_file = folder / "tasks.json"
        write_json_atomic(tasks_file, [asdict(job) for job in chunk])
        worker = [sys.executable, "-m", "cmhbench.sweep.worker", "--attempt", attempt,
                  "--slurm-tasks", str(tasks_file.resolve()), *(["--threads", str(threads)] if threads else [])]
        script = folder / "job.sbatch"
        with atomic_path(script) as tmp:
            tmp.write_text(batch_script(count=len(chunk), partition=partition, gpus=gpus, time_min=time_min,
                                        cpus=cpus_per_job, mem_gb=mem_gb, max_parallel=max_parallel,
                                        worker_command=worker), encoding="utf-8")
        log = str(folder.resolve()).replace("%", "%%") + "/task-%a.log"  # %% is a literal % to Slurm
        # --export=ALL: the tasks see this environment (virtual environment, PYTHONPATH, CMHBENCH_HOME)
        answer = _must(_call("sbatch", "--parsable", "--export=ALL", f"--chdir={Path.cwd()}",
                             f"--job-name=cmhbench-{manifest.stem}", f"--output={log}", str(script)), "sbatch")
        submission = Submission(answer.strip().split(";")[0], [job.run_id for job in chunk], folder, attempt)
        write_json_atomic(folder / "submission.json", submission.as_dict())
        submissions.append(submission)
    return submissions


# --- watching -----------------------------------------------------------------------------------
def queued_tasks(job_id: str) -> dict[int, tuple[str, str]] | None:
    """Array index -> (Slurm state, reason), e.g. ("PENDING", "BeginTime"), of the array's tasks Slurm
    still holds; None when the queue could not be read (the caller decides nothing that round)."""
    result = _call_or_none("squeue", "-h", "-r", f"--jobs={job_id}", "-o", "%i|%T|%r")
    if result is None:
        return None
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


def queued_run_ids(results: str | Path, sweep_name: str) -> dict[str, tuple[Submission, int, str, str]]:
    """run_id -> (submission, array index, Slurm state, reason) for this sweep's tasks that Slurm
    still holds, over every array the sweep submitted."""
    queued: dict[str, tuple[Submission, int, str, str]] = {}
    for submission in find_submissions(results, sweep_name):
        for index, (state, reason) in (queued_tasks(submission.job_id) or {}).items():
            if index < len(submission.run_ids):
                queued[submission.run_ids[index]] = (submission, index, state, reason)
    return queued


def held_tasks(results: str | Path, sweep_name: str) -> dict[str, tuple[Submission, int]]:
    """run_id -> (submission, array index) for this sweep's tasks that an earlier submission still
    has in Slurm's queue: a sweep run again waits for them instead of submitting them twice."""
    return {run_id: (submission, index)
            for run_id, (submission, index, _, _) in queued_run_ids(results, sweep_name).items()}


def _seconds_of(result_path: str) -> float:
    """A finished job's train + encode + evaluate seconds (not ``train_segments``, a count, nor
    ``checkpoint_seconds``, which is inside the training time)."""
    try:
        timings = json.loads(Path(result_path).read_text(encoding="utf-8"))["timings"]
        parts = (timings.get(k) for k in ("train_seconds", "encode_seconds", "evaluate_seconds"))
        return float(sum(v for v in parts if isinstance(v, (int, float))))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 0.0


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no log written)"
    return "\n".join(lines[-LOG_TAIL_LINES:])


def wait_for(watched: list[tuple[Submission, int]], jobs: list[Job], *,
             report: Callable[[JobOutcome], None] | None = None, poll_seconds: float = POLL_SECONDS,
             grace_seconds: float = GRACE_SECONDS) -> dict[str, JobOutcome]:
    """Wait until every watched array task has a result or has left Slurm's queue; an outcome per job.

    A task that left the queue and recorded its failure fails at once. One that left without a
    result or a failure record (cancelled, killed, out of memory) fails once it has stayed so for
    ``grace_seconds``: on a shared file system (NFS) a result written on a compute node can take a
    while to become visible on the node that waits."""
    by_run_id = {job.run_id: job for job in jobs}
    remaining = {(submission.job_id, index): (submission, index) for submission, index in watched}
    missing_since: dict[tuple[str, int], float] = {}
    outcomes: dict[str, JobOutcome] = {}
    while remaining:
        # the queue is read before the results: a task writes its result before it leaves the queue,
        # so one absent from this earlier read either has its result now or never will
        queues = {job_id: queued_tasks(job_id) for job_id in {key[0] for key in remaining}}
        now = time.monotonic()
        for key, (submission, index) in list(remaining.items()):
            job = by_run_id[submission.run_ids[index]]
            queued = queues[submission.job_id]
            if Path(job.result_path).exists():
                outcome = JobOutcome(job.run_id, job.label, "ran", _seconds_of(job.result_path))
            elif queued is None or index in queued:
                missing_since.pop(key, None)
                continue
            else:
                state = read_state(job.request["results_dir"], job.run_id) or {}
                if state.get("state") == "failed" and state.get("attempt") == submission.attempt:
                    outcome = JobOutcome(job.run_id, job.label, "failed", error=state.get("error"))
                elif now - missing_since.setdefault(key, now) < grace_seconds:
                    continue
                else:
                    log = submission.log_path(index)
                    outcome = JobOutcome(job.run_id, job.label, "failed", error=(
                        f"slurm task {submission.task(index)} left the queue without a result (cancelled, "
                        f"killed, timed out or out of memory); the last lines of its log {log}:\n{_log_tail(log)}"))
            outcomes[job.run_id] = outcome
            del remaining[key]
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
            found.append(Submission(str(content["job_id"]), list(content["run_ids"]), path.parent,
                                    str(content.get("attempt", ""))))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found
