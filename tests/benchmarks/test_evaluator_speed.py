"""Evaluator speed against the two numpy mAPs researchers use, measured in the same run:

* the per-query loop of most papers' code (DCMH's calc_map and its descendants);
* a batched numpy mAP (blocks of 100 queries: float32 matmul distances, stable argsort, cumsum),
  the fastest plain-numpy way to the same number.

at MIRFLICKR-25K scale (2,000 queries × 18,015 items, 24 labels) and NUS-WIDE scale (2,100 ×
193,734, 21 labels), 64 bits; and memory at 10^7 memory-mapped retrieval items.

    pytest tests/benchmarks/test_evaluator_speed.py -m perf     (CMHBENCH_BENCH_SCALE=0.1 for a quick look)
"""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest
import torch

from cmhbench.evaluation import evaluate
from cmhbench.evaluation.synthetic import label_correlated_codes
from tests.benchmarks.conftest import record

pytestmark = pytest.mark.perf
SCALE = float(os.environ.get("CMHBENCH_BENCH_SCALE", "1"))
BITS = 64
SCALES = {  # name: (queries, retrieval items, classes, label density)
    "mirflickr": (int(2000 * SCALE), int(18015 * SCALE), 24, 0.15),
    "nuswide": (int(2100 * SCALE), int(193734 * SCALE), 21, 0.09),
}
MAP_VALUES: dict[tuple[str, str], float] = {}


def synthetic_codes(queries: int, items: int, classes: int, density: float, seed: int = 0):
    return label_correlated_codes(queries, items, classes, density, BITS, seed)


@pytest.fixture(scope="module", params=list(SCALES))
def scale(request):
    return request.param, synthetic_codes(*SCALES[request.param])


def numpy_loop_map(q, r, ql, rl):
    """The loop in most papers' code, with a stable argsort so that ties go by index as in our
    definition and the values can be compared."""
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


def batched_numpy_map(q, r, ql, rl, batch: int = 100):
    """The same mAP over blocks of queries: one matmul per block for distances and relevance."""
    bits = q.shape[1]
    r_float, rl_float = r.astype(np.float32).T, rl.astype(np.float32).T
    positions = np.arange(1, r.shape[0] + 1)
    aps = []
    for start in range(0, q.shape[0], batch):
        hamming = 0.5 * (bits - q[start:start + batch].astype(np.float32) @ r_float)
        relevant = (ql[start:start + batch].astype(np.float32) @ rl_float) > 0
        ranked = np.take_along_axis(relevant, np.argsort(hamming, axis=1, kind="stable"), 1)
        total = ranked.sum(1)
        summed = np.where(ranked, np.cumsum(ranked, 1) / positions, 0.0).sum(1)
        aps.append(summed[total > 0] / total[total > 0])
    return float(np.concatenate(aps).mean())


def test_numpy_loop_reference(benchmark, scale):
    name, arrays = scale
    MAP_VALUES[name, "loop"] = benchmark.pedantic(numpy_loop_map, args=arrays, rounds=1, iterations=1)
    record(benchmark, f"{name}: numpy per-query loop, mAP (cpu)")


def test_batched_numpy_reference(benchmark, scale):
    name, arrays = scale
    MAP_VALUES[name, "batched"] = benchmark.pedantic(batched_numpy_map, args=arrays, rounds=2, iterations=1)
    record(benchmark, f"{name}: batched numpy mAP (cpu)", f"{name}: numpy per-query loop, mAP (cpu)")


def test_map_cpu(benchmark, scale):
    name, arrays = scale
    evaluate(*(a[:10] for a in arrays[:1]), arrays[1], arrays[2][:10], arrays[3], device="cpu")  # compiled
    result = benchmark.pedantic(lambda: evaluate(*arrays, device="cpu", map_at=[], precision_at=[]),
                                rounds=3, iterations=1)
    record(benchmark, f"{name}: cmhbench mAP (cpu)", f"{name}: batched numpy mAP (cpu)")
    for reference in ("loop", "batched"):
        if (name, reference) in MAP_VALUES:
            assert abs(result["map"] - MAP_VALUES[name, reference]) < 1e-9


def test_full_metric_set_cpu(benchmark, scale):
    name, arrays = scale
    benchmark.pedantic(lambda: evaluate(*arrays, device="cpu"), rounds=2, iterations=1)
    record(benchmark, f"{name}: cmhbench full metric set, one direction (cpu)", f"{name}: batched numpy mAP (cpu)")


def test_ten_million_memory_mapped_items(benchmark, tmp_path_factory):
    """10^7 retrieval items read from memory-mapped .npy files (640 MB of int8 codes): the time of
    one query block, and the evaluator's peak allocation, printed beside the input's size."""
    items, queries = int(10_000_000 * SCALE), 100
    folder = tmp_path_factory.mktemp("stream")
    codes = np.lib.format.open_memmap(folder / "codes.npy", "w+", np.int8, (items, BITS))
    labels = np.lib.format.open_memmap(folder / "labels.npy", "w+", np.uint8, (items, 21))
    block = 1_000_000
    for start in range(0, items, block):
        q, r, ql, rl = synthetic_codes(1, min(block, items - start), 21, 0.09, seed=start)
        codes[start:start + len(r)], labels[start:start + len(r)] = r, rl
    codes.flush(), labels.flush()
    del codes, labels
    r, rl = np.load(folder / "codes.npy", mmap_mode="r"), np.load(folder / "labels.npy", mmap_mode="r")
    q, ql = np.array(r[:queries]), np.array(rl[:queries])
    tracemalloc.start()
    benchmark.pedantic(lambda: evaluate(q, r, ql, rl, device="cpu"), rounds=1, iterations=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    record(benchmark, f"10^7 memory-mapped items, {queries} queries, full set (cpu)")
    print(f"\npeak allocation {peak / 2**20:.0f} MB for {r.nbytes / 2**20:.0f} MB of codes "
          f"and {rl.nbytes / 2**20:.0f} MB of labels ({peak / items:.1f} bytes per item)")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_full_metric_set_both_directions_gpu(benchmark, scale):
    name, (q, r, ql, rl) = scale

    def both():
        evaluate(q, r, ql, rl, device="cuda")
        evaluate(r[:len(q)], r, rl[:len(q)], rl, device="cuda")
        torch.cuda.synchronize()

    both()  # warm-up: CUDA context and kernels
    benchmark.pedantic(both, rounds=5, iterations=1)
    record(benchmark, f"{name}: cmhbench full metric set, both directions (cuda)", f"{name}: batched numpy mAP (cpu)")
