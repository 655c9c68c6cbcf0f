"""Evaluator speed at NUS-WIDE scale (2,100 queries × 193,734 items, 64 bits, 21 labels) against
the per-query numpy loop most papers' code uses, measured in the same run.

    pytest tests/benchmarks -m perf            (CMHBENCH_BENCH_SCALE=0.1 for a quick look)
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from cmhbench.evaluation import evaluate
from tests.benchmarks.conftest import record

pytestmark = pytest.mark.perf
SCALE = float(os.environ.get("CMHBENCH_BENCH_SCALE", "1"))
NUM_QUERY, NUM_RETRIEVAL, BITS, CLASSES = int(2100 * SCALE), int(193734 * SCALE), 64, 21


@pytest.fixture(scope="module")
def nuswide_like():
    rng = np.random.default_rng(0)
    # labels with NUS-WIDE-like density (about 1.9 of 21 concepts per item)
    ql = (rng.random((NUM_QUERY, CLASSES)) < 0.09).astype(np.uint8)
    rl = (rng.random((NUM_RETRIEVAL, CLASSES)) < 0.09).astype(np.uint8)
    ql[ql.sum(1) == 0, 0] = 1
    rl[rl.sum(1) == 0, 0] = 1
    # codes correlated with labels, so that the ranking is not random (and has many ties)
    projection = rng.standard_normal((CLASSES, BITS))
    q = np.where(ql @ projection + rng.standard_normal((NUM_QUERY, BITS)) >= 0, 1, -1).astype(np.int8)
    r = np.where(rl @ projection + rng.standard_normal((NUM_RETRIEVAL, BITS)) >= 0, 1, -1).astype(np.int8)
    return q, r, ql, rl


def numpy_loop_map(q, r, ql, rl):
    """The loop in most papers' code (e.g. DCMH's calc_map), with a stable argsort so that ties go
    by index as in our definition and the values can be compared."""
    total, counted = 0.0, 0
    bits = q.shape[1]
    r_float = r.astype(np.float32)
    for i in range(q.shape[0]):
        relevant = (ql[i].astype(np.float32) @ rl.T.astype(np.float32)) > 0
        r_total = relevant.sum()
        if r_total == 0:
            continue
        hamming = 0.5 * (bits - r_float @ q[i].astype(np.float32))
        order = np.argsort(hamming, kind="stable")
        ranked = relevant[order]
        positions = np.flatnonzero(ranked) + 1.0
        total += np.mean(np.arange(1, r_total + 1) / positions)
        counted += 1
    return total / counted


def test_numpy_loop_reference(benchmark, nuswide_like):
    value = benchmark.pedantic(numpy_loop_map, args=nuswide_like, rounds=1, iterations=1)
    record(benchmark, "numpy per-query loop, mAP (cpu)")
    nuswide_like_values["reference_map"] = value


nuswide_like_values: dict[str, float] = {}


def test_map_cpu(benchmark, nuswide_like):
    result = benchmark.pedantic(lambda: evaluate(*nuswide_like, device="cpu", map_at=[], precision_at=[]),
                                rounds=2, iterations=1)
    record(benchmark, "cmhbench mAP (cpu)", "numpy per-query loop, mAP (cpu)")
    if "reference_map" in nuswide_like_values:
        assert abs(result["map"] - nuswide_like_values["reference_map"]) < 1e-6


def test_tie_aware_cpu(benchmark, nuswide_like):
    benchmark.pedantic(lambda: evaluate(*nuswide_like, device="cpu", ranking=False), rounds=2, iterations=1)
    record(benchmark, "cmhbench tie-aware mAP + PR + lookup, no sort (cpu)", "numpy per-query loop, mAP (cpu)")


def test_full_metric_set_cpu(benchmark, nuswide_like):
    benchmark.pedantic(lambda: evaluate(*nuswide_like, device="cpu"), rounds=1, iterations=1)
    record(benchmark, "cmhbench full metric set, one direction (cpu)", "numpy per-query loop, mAP (cpu)")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_full_metric_set_both_directions_gpu(benchmark, nuswide_like):
    q, r, ql, rl = nuswide_like

    def both():
        evaluate(q, r, ql, rl, device="cuda")
        evaluate(r[:NUM_QUERY], r, ql, rl, device="cuda")
        torch.cuda.synchronize()

    both()  # warm-up: CUDA context and kernels
    benchmark.pedantic(both, rounds=5, iterations=1)
    record(benchmark, "cmhbench full metric set, both directions (cuda)", "numpy per-query loop, mAP (cpu)")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_map_gpu(benchmark, nuswide_like):
    evaluate(*nuswide_like, device="cuda", map_at=[], precision_at=[])
    benchmark.pedantic(lambda: evaluate(*nuswide_like, device="cuda", map_at=[], precision_at=[]), rounds=5, iterations=1)
    record(benchmark, "cmhbench mAP (cuda)", "numpy per-query loop, mAP (cpu)")
