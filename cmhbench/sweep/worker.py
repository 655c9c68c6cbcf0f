"""A sweep's worker process.

``python -m cmhbench.sweep.worker MANIFEST --attempt A --offset I`` (a `local-gpus` worker) works
through the manifest's jobs (see `jobs.work_through`) and prints one JSON line per job outcome on
stdout for the parent to collect. Its GPU is chosen by the parent through CUDA_VISIBLE_DEVICES; its
CPU thread count through CMHBENCH_TORCH_THREADS.

``python -m cmhbench.sweep.worker --attempt A --slurm-tasks FILE`` (a Slurm array task) runs the one
job at index SLURM_ARRAY_TASK_ID of FILE (the submission's list of jobs), with as many CPU threads as
Slurm gave the task (or ``--threads N``, sweep --threads); it exits 1 when the job failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    """Run the jobs; Ctrl-C (the sweep's process group) and SIGTERM (the parent, or Slurm's requeue,
    time limit and scancel) end the worker as they end the CLI: writers clean up, exit 130 or 143."""
    from cmhbench import interrupts

    restore = interrupts.install()
    try:
        _work(argv)
        interrupts.raise_if_received()
    except KeyboardInterrupt:
        sys.exit(130)
    except interrupts.Terminated:
        sys.exit(143)
    finally:
        restore()


def _work(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cmhbench.sweep.worker")
    parser.add_argument("manifest", nargs="?", help="the sweep manifest (not with --slurm-tasks)")
    parser.add_argument("--attempt", required=True)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--slurm-tasks", help="JSON list of run_ids; run the one at SLURM_ARRAY_TASK_ID")
    parser.add_argument("--threads", type=int, help="CPU threads (sweep --threads)")
    args = parser.parse_args(argv)

    threads = args.threads or os.environ.get("CMHBENCH_TORCH_THREADS") or (args.slurm_tasks and os.environ.get("SLURM_CPUS_PER_TASK"))
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    from cmhbench.sweep.jobs import execute_job, work_through
    from cmhbench.sweep.manifest import read_manifest
    from cmhbench.sweep.spec import Job

    def emit(outcome) -> None:
        print(json.dumps(outcome.as_dict()), flush=True)

    if args.slurm_tasks:
        tasks = json.loads(Path(args.slurm_tasks).read_text(encoding="utf-8"))
        job = Job(**tasks[int(os.environ["SLURM_ARRAY_TASK_ID"])])
        outcome = execute_job(job, args.attempt, wait=True)
        emit(outcome)
        if outcome.status == "failed":
            print(outcome.error, file=sys.stderr)
            sys.exit(1)
        return
    if not args.manifest:
        parser.error("give the sweep manifest")
    _, jobs = read_manifest(args.manifest)
    work_through(jobs, args.attempt, offset=args.offset, report=emit)


if __name__ == "__main__":
    main()
