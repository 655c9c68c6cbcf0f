"""CVH, SCM and CMFH: against scipy float64 solutions, objective monotonicity, real Wikipedia data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import scipy.linalg
import torch
from cmhbench_methods.cmfh.model import cmfh
from cmhbench_methods.cvh.model import cvh_projections
from cmhbench_methods.linalg import regularised
from cmhbench_methods.scm.model import scm_orth, scm_seq, semantic_cross_covariance
from conftest import shared_data
from reference_metrics import average_precision

from cmhbench.runner import RunRequest, run


def views(seed=0, n=300, dx=12, dy=8, c=5):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 4))
    x = latent @ rng.standard_normal((4, dx)) + 0.5 * rng.standard_normal((n, dx))
    y = latent @ rng.standard_normal((4, dy)) + 0.5 * rng.standard_normal((n, dy))
    labels = (rng.random((n, c)) < 0.3).astype(float)
    labels[labels.sum(1) == 0, 0] = 1
    x, y = x - x.mean(0), y - y.mean(0)
    return torch.tensor(x), torch.tensor(y), torch.tensor(labels)


def scipy_top(a, b, k):
    values, vectors = scipy.linalg.eigh(a, b)
    order = np.argsort(values)[::-1][:k]
    return values[order], vectors[:, order]


def same_up_to_sign(ours, reference):
    ours, reference = np.asarray(ours), np.asarray(reference)
    signs = np.sign((ours * reference).sum(0))
    np.testing.assert_allclose(ours * signs, reference, rtol=1e-6, atol=1e-8)


def test_cvh_solves_the_papers_eigenproblem():
    x, y, _ = views()
    a, b, mu = cvh_projections(x, y, 4)
    cxx, cyy = regularised(x.T @ x, 1e-4).numpy(), regularised(y.T @ y, 1e-4).numpy()
    cxy = (x.T @ y).numpy()
    m = cxy @ np.linalg.solve(cyy, cxy.T)  # C_xy C_yy⁻¹ C_yx, the paper's form
    values, vectors = scipy_top(m, cxx, 4)
    np.testing.assert_allclose(mu.numpy(), values, rtol=1e-8)
    same_up_to_sign(a.numpy(), vectors)
    np.testing.assert_allclose(m @ a.numpy(), cxx @ a.numpy() * mu.numpy(), rtol=1e-6, atol=1e-6)
    # the text projection completes the pair: b = C_yy⁻¹ C_yx a / sqrt(mu)
    np.testing.assert_allclose(b.numpy(), np.linalg.solve(cyy, cxy.T @ a.numpy()) / np.sqrt(values), rtol=1e-6)
    copied, _, _ = cvh_projections(x, y, 4, form="copied")
    assert not np.allclose(np.abs(copied.numpy()), np.abs(a.numpy()), atol=1e-3)


def test_bits_beyond_the_rank_are_constant():
    x, y, _ = views(dy=3)
    a, b, _ = cvh_projections(x, y, 6)
    assert torch.count_nonzero(a.abs().sum(0)) == 3 and torch.count_nonzero(b.abs().sum(0)) == 3


def test_semantic_cross_covariance_is_x_s_y():
    x, y, labels = views()
    unit = labels / labels.norm(dim=1, keepdim=True)
    s = 2 * unit @ unit.T - 1
    np.testing.assert_allclose(semantic_cross_covariance(x, y, labels).numpy(), (x.T @ s @ y).numpy(), rtol=1e-10, atol=1e-8)


def test_scm_orth_and_seq_solutions():
    x, y, labels = views(1)
    c = semantic_cross_covariance(x, y, labels).numpy()
    cxx, cyy = regularised(x.T @ x, 1e-4).numpy(), regularised(y.T @ y, 1e-4).numpy()
    values, vectors = scipy_top(c @ np.linalg.solve(cyy, c.T), cxx, 5)
    wx, wy = scm_orth(x, y, labels, 5)
    same_up_to_sign(wx.numpy(), vectors)
    # orthogonality constraint of SCM-orth: W_xᵀ C_xx W_x = I
    np.testing.assert_allclose(wx.numpy().T @ cxx @ wx.numpy(), np.eye(5), atol=1e-8)
    sx, sy, learnt = scm_seq(x, y, labels, 5, stop="none")
    assert learnt == 5
    same_up_to_sign(sx[:, :1].numpy(), vectors[:, :1])  # the first bit has no residual yet
    # bit 2 solves the problem for the residual left by bit 1
    bx, by = np.sign(x.numpy() @ sx[:, :1].numpy()), np.sign(y.numpy() @ sy[:, :1].numpy())
    residual = 5 * c - (x.numpy().T @ bx) @ (by.T @ y.numpy())
    _, second = scipy_top(residual @ np.linalg.solve(cyy, residual.T), cxx, 1)
    same_up_to_sign(sx[:, 1:2].numpy(), second)


def residual_eigenvalues(x, y, labels, wx, wy):
    """The top eigenvalue each SCM-seq bit solved for, recomputed with scipy from the bits before it."""
    c = wx.shape[1] * semantic_cross_covariance(x, y, labels).numpy()
    cxx, cyy = regularised(x.T @ x, 1e-4).numpy(), regularised(y.T @ y, 1e-4).numpy()
    values = []
    for bit in range(wx.shape[1]):
        values.append(scipy_top(c @ np.linalg.solve(cyy, c.T), cxx, 1)[0][0])
        bx, by = np.sign(x.numpy() @ wx[:, bit].numpy()), np.sign(y.numpy() @ wy[:, bit].numpy())
        c = c - np.outer(x.numpy().T @ bx, y.numpy().T @ by)
    return np.array(values)


def test_scm_seq_stops_like_the_authors_code():
    """stop="cca": the first bit whose eigenvalue exceeds its predecessor's is not learnt; it and
    the rest are CCA's leading pairs (CVH's paper form is exactly CCA's eigenproblem)."""
    x, y, labels = views(3)
    full_x, full_y, learnt_all = scm_seq(x, y, labels, 12, stop="none")
    values = residual_eigenvalues(x, y, labels, full_x, full_y)
    rises = np.flatnonzero(values[1:] > values[:-1])
    assert learnt_all == 12 and rises.size and rises[0] >= 1, "this case must fire the rule after bit 2"
    stop_at = int(rises[0]) + 1
    wx, wy, learnt = scm_seq(x, y, labels, 12, stop="cca")
    assert learnt == stop_at
    np.testing.assert_allclose(wx[:, :learnt].numpy(), full_x[:, :learnt].numpy(), rtol=1e-10, atol=1e-12)
    cca_x, cca_y, _ = cvh_projections(x, y, 12 - learnt)
    assert (cca_x.abs().sum(0) > 0).sum() >= 6  # the CCA bits are real directions, not constants
    same_up_to_sign(wx[:, learnt:].numpy(), cca_x.numpy())
    same_up_to_sign(wy[:, learnt:].numpy(), cca_y.numpy())
    with pytest.raises(ValueError, match="stop='never'"):
        scm_seq(x, y, labels, 4, stop="never")


def test_cmfh_objective_never_increases():
    x, y, _ = views(2)
    _, _, history = cmfh(x, y, 6, iterations=40, tolerance=0.0, generator=torch.Generator().manual_seed(0))
    assert len(history) == 40
    assert all(later <= earlier * (1 + 1e-10) for earlier, later in zip(history, history[1:], strict=False))
    assert history[-1] < history[0]


# measured on these files (i2t, t2i): cvh 0.190/0.185; cmfh 0.227-0.250/0.217-0.243;
# scm-seq 0.233-0.253/0.228-0.253. The supervised floor, 0.22, is the README's supervised linear
# figure; SCM-orth cannot reach it here (see the next test).
FLOORS = {"cvh": (0.17, 0.17), "cmfh": (0.21, 0.20), "scm-seq": (0.22, 0.22)}


@pytest.mark.parametrize("method", sorted(FLOORS))
def test_on_wikipedia(prepared_wiki, tmp_path, method):
    for bits in (16, 32, 64):
        outcome = run(RunRequest(method=method, dataset="wiki", bits=bits, seed=0, device="cpu", quiet=True,
                                 results_dir=tmp_path))
        metrics = outcome.result["metrics"]
        assert metrics["i2t"]["map"] >= FLOORS[method][0], (method, bits, metrics["i2t"]["map"])
        assert metrics["t2i"]["map"] >= FLOORS[method][1], (method, bits, metrics["t2i"]["map"])


def wiki_views():
    """The raw Wikipedia features and labels, read straight from the .mat and .list files."""
    mat = scipy.io.loadmat(shared_data("wiki", "raw_features.mat"))
    labels = {}
    for split in ("train", "test"):
        lines = shared_data("wiki", f"{split}set_txt_img_cat.list").read_text().splitlines()
        labels[split] = np.array([int(line.split("\t")[2]) for line in lines])
    return mat["I_tr"], mat["T_tr"], labels["train"], mat["I_te"], mat["T_te"], labels["test"]


def brute_force_map(query_codes, retrieval_codes, query_labels, retrieval_labels):
    """Single-label mAP over the whole ranking, ties in Hamming distance broken by index: the stable
    sort is `reference_metrics.ranking`'s order, vectorised (its per-item loop is slow at this size)."""
    return float(np.mean([
        average_precision(retrieval_labels[np.argsort(-(retrieval_codes @ code), kind="stable")] == label)
        for code, label in zip(query_codes, query_labels, strict=True)]))


def test_scm_orth_on_wikipedia_is_capped_by_the_text_rank(prepared_wiki, tmp_path):
    """SCM-orth solves one eigenproblem of XᵀSY. The centred 10-topic text proportions (rows sum to
    one) have rank 9, so at most 9 bits carry information at any code length, and mAP stays at the
    9-bit value, below the README's supervised figure. This recomputes that value independently
    (scipy on the raw .mat, brute-force mAP) and checks the method reproduces it at 16, 32, 64 bits."""
    x, y, train_labels, x_query, y_query, query_labels = wiki_views()
    x_mean, y_mean = x.mean(0), y.mean(0)
    x, y, x_query, y_query = x - x_mean, y - y_mean, x_query - x_mean, y_query - y_mean
    one_hot = np.eye(10)[train_labels - 1]
    c = x.T @ (2 * one_hot @ one_hot.T - 1) @ y
    cxx, cyy = regularised(torch.tensor(x.T @ x), 1e-4).numpy(), regularised(torch.tensor(y.T @ y), 1e-4).numpy()
    values, vectors = scipy_top(c @ np.linalg.solve(cyy, c.T), cxx, 16)
    informative = values > 1e-9 * values[0]
    assert informative.sum() == 9
    wx = vectors[:, informative]
    wy = np.linalg.solve(cyy, c.T @ wx)
    codes = {name: np.where(view @ w >= 0, 1.0, -1.0)
             for name, view, w in (("image", x, wx), ("text", y, wy), ("image_q", x_query, wx), ("text_q", y_query, wy))}
    expected = {direction: brute_force_map(codes[f"{source}_q"], codes[target], query_labels, train_labels)
                for direction, source, target in (("i2t", "image", "text"), ("t2i", "text", "image"),
                                                  ("i2i", "image", "image"), ("t2t", "text", "text"))}
    assert expected["i2t"] < 0.2 and expected["t2i"] < 0.2  # measured 0.169 / 0.175
    for bits in (16, 32, 64):
        # the single-modality directions on request (`--directions`), checked at one length
        directions = ("i2t", "t2i", "i2i", "t2t") if bits == 16 else ("i2t", "t2i")
        outcome = run(RunRequest(method="scm-orth", dataset="wiki", bits=bits, seed=0, device="cpu", quiet=True,
                                 results_dir=tmp_path, directions=directions))
        assert tuple(outcome.result["metrics"]) == directions
        for direction in directions:
            assert outcome.result["metrics"][direction]["map"] == pytest.approx(expected[direction], abs=1e-9), \
                (bits, direction)
