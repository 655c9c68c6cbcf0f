"""Sweep throughput: 8 tiny CPU jobs (DCMH, 2 epochs on a 200-pair toy) with one worker process
against two, measured in the same run. Each worker gets cpu_count / workers torch threads, so both
configurations use the whole machine; two workers win where one job cannot keep every core busy
(small batches, Python overhead, data loading), which is the common case for small jobs.

    pytest tests/benchmarks/test_sweep_throughput.py -m perf
"""

from __future__ import annotations

import itertools

import pytest

from cmhbench.sweep.launch import launch
from cmhbench.sweep.spec import SweepSpec
from tests.benchmarks.conftest import record

pytestmark = pytest.mark.perf
_fresh = itertools.count()


def _tiny_sweep(folder) -> SweepSpec:
    return SweepSpec(methods=["dcmh"], datasets=["toy"], bits=[8, 16, 24, 32], seeds=[0, 1], epochs=2,
                     dataset_options={"toy": {"size": 200, "vocabulary": 160}}, device="cpu",
                     results=str(folder / f"round{next(_fresh)}"))


@pytest.mark.parametrize("workers", [1, 2])
def test_sweep_of_eight_tiny_jobs(benchmark, tmp_path, workers):
    from cmhbench_datasets.toy import open_toy

    open_toy({"size": 200, "vocabulary": 160})  # generate the data once, outside the timing

    def sweep():
        summary = launch(_tiny_sweep(tmp_path), "local-gpus", workers=workers)
        assert summary.count("ran") == 8, [o.error for o in summary.outcomes]

    benchmark.pedantic(sweep, rounds=2, iterations=1)
    record(benchmark, f"sweep 8 tiny jobs, {workers} worker(s)",
           reference="sweep 8 tiny jobs, 1 worker(s)" if workers == 2 else None)
