"""A sweep's worker process.

``python -m cmhbench.sweep.worker MANIFEST --attempt A --offset I`` (a `local-gpus` worker) works
through the manifest's jobs (see `jobs.work_through`) and prints one JSON line per job outcome on
stdout for the parent to collect. Its GPU is chosen by the parent through CUDA_VISIBLE_DEVICES; its
CPU thread count through CMHBENCH_TORCH_THREADS.

``python -m cmhbench.sweep.worker MANIFEST --attempt A --slurm-tasks FILE`` (a Slurm array task) runs
the one job that FILE, a JSON list of run_ids, names at index SLURM_ARRAY_TASK_ID, with as many CPU
threads as Slurm gave the task; it exits 1 when the job failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cmhbench.sweep.worker")
    parser.add_argument("manifest")
    parser.add_argument("--attempt", required=True)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--slurm-tasks", help="JSON list of run_ids; run the one at SLURM_ARRAY_TASK_ID")
    args = parser.parse_args(argv)

    threads = os.environ.get("CMHBENCH_TORCH_THREADS") or (args.slurm_tasks and os.environ.get("SLURM_CPUS_PER_TASK"))
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    from cmhbench.sweep.jobs import execute_job, work_through
    from cmhbench.sweep.manifest import read_manifest

    _, jobs = read_manifest(args.manifest)

    def emit(outcome) -> None:
        print(json.dumps(outcome.as_dict()), flush=True)

    if args.slurm_tasks:
        run_ids = json.loads(Path(args.slurm_tasks).read_text(encoding="utf-8"))
        run_id = run_ids[int(os.environ["SLURM_ARRAY_TASK_ID"])]
        job = next(job for job in jobs if job.run_id == run_id)
        outcome = execute_job(job, args.attempt, wait=True)
        emit(outcome)
        if outcome.status == "failed":
            print(outcome.error, file=sys.stderr)
            sys.exit(1)
        return
    work_through(jobs, args.attempt, offset=args.offset, report=emit)


if __name__ == "__main__":
    main()
