"""SCM-seq's solver against the authors' route, measured in the same run.

Every SCM-seq bit solves max wxᵀ C wy under the covariance constraints. The authors' code forms
A = C Cyy⁻¹ Cᵀ and runs a full generalized eigendecomposition eig(A, Cxx) per bit: O(dx³) each, on
4096-d CNN features minutes per bit. `linalg.leading_pairs` takes the SVD of the reduced
dx×dy matrix instead (exact; the shallow tests check it against scipy). Image side 2,048-d by
default (CMHBENCH_BENCH_DIM to change), text side 1,386-d (MIRFLICKR's tag vocabulary), 16 bits.

    pytest tests/benchmarks/test_shallow_speed.py -m perf
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.linalg
import torch
from cmhbench_methods.linalg import covariance, regularised
from cmhbench_methods.scm.model import scm_seq, semantic_cross_covariance

from tests.benchmarks.conftest import record

pytestmark = pytest.mark.perf
IMAGE_DIM = int(os.environ.get("CMHBENCH_BENCH_DIM", "2048"))
TEXT_DIM, ITEMS, CLASSES, BITS = 1386, 5000, 24, 16


@pytest.fixture(scope="module")
def views():
    rng = np.random.default_rng(0)
    labels = (rng.random((ITEMS, CLASSES)) < 0.12).astype(float)
    labels[labels.sum(1) == 0, 0] = 1
    x = labels @ rng.standard_normal((CLASSES, IMAGE_DIM)) + rng.standard_normal((ITEMS, IMAGE_DIM))
    y = labels @ rng.standard_normal((CLASSES, TEXT_DIM)) + rng.standard_normal((ITEMS, TEXT_DIM))
    x, y = x - x.mean(0), y - y.mean(0)
    return torch.tensor(x), torch.tensor(y), torch.tensor(labels)


def authors_route(x, y, labels, bits, relative_reg=1e-4):
    """SCM-seq as the authors' code computes each bit: a full generalized eigendecomposition."""
    cxx = regularised(covariance(x), relative_reg).numpy()
    cyy = regularised(covariance(y), relative_reg).numpy()
    residual = bits * semantic_cross_covariance(x, y, labels).numpy()
    xn, yn = x.numpy(), y.numpy()
    columns = []
    for _ in range(bits):
        a = residual @ np.linalg.solve(cyy, residual.T)
        values, vectors = scipy.linalg.eigh(0.5 * (a + a.T), cxx)
        wx = vectors[:, -1:]
        wy = np.linalg.solve(cyy, residual.T @ wx) / np.sqrt(values[-1])
        residual = residual - np.outer(xn.T @ np.sign(xn @ wx), yn.T @ np.sign(yn @ wy))
        columns.append(wx)
    return np.hstack(columns)


def test_scm_seq_authors_route(benchmark, views):
    reference = benchmark.pedantic(authors_route, args=(*views, BITS), rounds=1, iterations=1)
    record(benchmark, f"SCM-seq {BITS} bits, full eig per bit ({IMAGE_DIM}-d)")
    ours, _, _ = scm_seq(*views, BITS, stop="none")
    signs = np.sign((ours.numpy() * reference).sum(0))
    np.testing.assert_allclose(ours.numpy() * signs, reference, rtol=1e-4, atol=1e-8)


def test_scm_seq_leading_pairs(benchmark, views):
    benchmark.pedantic(scm_seq, args=(*views, BITS), kwargs={"stop": "none"}, rounds=3, iterations=1)
    record(benchmark, f"SCM-seq {BITS} bits, leading_pairs ({IMAGE_DIM}-d)",
           reference=f"SCM-seq {BITS} bits, full eig per bit ({IMAGE_DIM}-d)")
