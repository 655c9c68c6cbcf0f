"""A `local-gpus` worker process: ``python -m cmhbench.sweep.worker MANIFEST --attempt A --offset I``.

It works through the manifest's jobs (see `jobs.work_through`) and prints one JSON line per job
outcome on stdout for the parent to collect. Its GPU is chosen by the parent through
CUDA_VISIBLE_DEVICES; its CPU thread count through CMHBENCH_TORCH_THREADS.
"""

from __future__ import annotations

import argparse
import json
import os


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cmhbench.sweep.worker")
    parser.add_argument("manifest")
    parser.add_argument("--attempt", required=True)
    parser.add_argument("--offset", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    if os.environ.get("CMHBENCH_TORCH_THREADS"):
        torch.set_num_threads(int(os.environ["CMHBENCH_TORCH_THREADS"]))
    from cmhbench.sweep.jobs import work_through
    from cmhbench.sweep.manifest import read_manifest

    _, jobs = read_manifest(args.manifest)

    def emit(outcome) -> None:
        print(json.dumps(outcome.as_dict()), flush=True)

    work_through(jobs, args.attempt, offset=args.offset, report=emit)


if __name__ == "__main__":
    main()
