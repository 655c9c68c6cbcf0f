"""Codes and labels for timing the evaluator at a dataset's scale (benchmarks, `benchmarks/gpu-check`)."""

from __future__ import annotations

import numpy as np


def label_correlated_codes(queries: int, items: int, classes: int, density: float, bits: int = 64, seed: int = 0):
    """(query codes, retrieval codes, query labels, retrieval labels): multi-hot labels of the given
    density (every item has at least one), and ±1 codes that are a noisy projection of them, so that
    the ranking is not random and has many ties."""
    rng = np.random.default_rng(seed)
    ql = (rng.random((queries, classes)) < density).astype(np.uint8)
    rl = (rng.random((items, classes)) < density).astype(np.uint8)
    ql[ql.sum(1) == 0, 0] = 1
    rl[rl.sum(1) == 0, 0] = 1
    projection = rng.standard_normal((classes, bits))
    q = np.where(ql @ projection + rng.standard_normal((queries, bits)) >= 0, 1, -1).astype(np.int8)
    r = np.where(rl @ projection + rng.standard_normal((items, bits)) >= 0, 1, -1).astype(np.int8)
    return q, r, ql, rl
