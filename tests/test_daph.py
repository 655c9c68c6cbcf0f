"""DAPH: each loss term against explicit float64 loops, anchor selection by hand, proxy artifacts,
resume mid-stage, and learning on toy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from cmhbench_methods.daph import losses as L
from cmhbench_methods.daph.networks import ClassProxyGenerator, LabelBranch, ProxyBranch
from conftest import crash_after_checkpoints

from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import cache_home
from cmhbench.runner import RunRequest, run


def unit(rng, n, k):
    x = rng.standard_normal((n, k))
    return torch.tensor(x / np.linalg.norm(x, axis=1, keepdims=True))


LABELS = torch.tensor([[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 1.0]], dtype=torch.float64)
ANCHOR_LABELS = torch.tensor([[1, 1, 0, 0], [0, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0],
                              [0, 0, 1, 1.0]], dtype=torch.float64)


def test_anchor_selection_by_hand():
    pos, neg, part, weighted = L.select_anchors(LABELS, ANCHOR_LABELS, image_epoch=True)
    # item 0 {0,1}: same set = anchor 0; no shared label = anchors 3, 5; the rest partial
    assert pos[0].tolist() == [1, 0, 0, 0, 0, 0] and neg[0].tolist() == [0, 0, 0, 1, 0, 1]
    assert part[0].tolist() == [0, 1, 1, 0, 1, 0]
    shared = [2, 1, 2, 0, 1, 0]
    np.testing.assert_allclose(weighted[0].numpy(), [s * p / (sum(shared) + L.EPS) for s, p in zip(shared, part[0].tolist(), strict=True)])
    pos_t, neg_t, part_t, _ = L.select_anchors(LABELS, ANCHOR_LABELS, image_epoch=False)
    # text epochs: positive = anchor holds all of the item's labels (anchor 2 ⊇ {0,1} too)
    assert pos_t[0].tolist() == [1, 0, 1, 0, 0, 0] and part_t[0].tolist() == [0, 1, 0, 0, 1, 0]
    assert pos_t[1].tolist() == [1, 1, 1, 0, 0, 0] and neg_t[1].tolist() == [0, 0, 0, 1, 1, 1]


def test_stage1_terms_against_loops():
    rng = np.random.default_rng(0)
    gamma, sigma, k = 20.0, 0.2, 8
    h, p = unit(rng, 4, k), unit(rng, 4, k)
    expected = 0.0
    for i in range(4):
        y = LABELS[i].numpy()
        logits = (h[i] @ p.T).numpy()
        # the code's denominator: e^{γ h·p_k} per negative class, e^0 per positive class
        rest = sum(math.exp(gamma * logits[c]) if y[c] == 0 else 1.0 for c in range(4))
        terms = [math.log(math.exp(gamma * (logits[j] - sigma)) / (math.exp(gamma * (logits[j] - sigma)) + rest + L.EPS) + L.EPS)
                 for j in range(4) if y[j] == 1]
        # the code sums log(0 + ε + 1) = log(1 + ε) for every negative class as well
        terms += [math.log(1 + L.EPS)] * int((y == 0).sum())
        expected += -sum(terms) / y.sum()
    assert abs(float(L.proxy_softmax(h, p, LABELS, gamma, sigma)) - expected) < 1e-9
    gram = (p @ p.T).numpy()
    assert abs(float(L.class_separation(p)) - sum(max(gram[a, b] - (a == b), 0) ** 2 for a in range(4) for b in range(4))) < 1e-12
    assert abs(float(L.balance(h, p)) - (np.sum(h.numpy().sum(0) ** 2) + np.sum(p.numpy().sum(0) ** 2))) < 1e-12
    signs = np.sign(h.numpy())
    q = sum((np.dot(signs[i] / np.linalg.norm(signs[i]), h[i].numpy()) - 1) ** 2 for i in range(4))
    assert abs(float(L.quantisation(h)) - q) < 1e-12


def test_stage2_terms_against_loops():
    rng = np.random.default_rng(1)
    gamma, sigma, k = 20.0, 0.2, 6
    out = torch.tensor(np.tanh(rng.standard_normal((4, k))))
    anchors = torch.tensor(np.sign(rng.standard_normal((6, k))))
    pos, neg, part, weighted = L.select_anchors(LABELS, ANCHOR_LABELS, image_epoch=True)
    logits = (out @ anchors.T).numpy() / k
    # L_same over items with a positive anchor (training items always have one: themselves)
    rows = [i for i in range(4) if pos[i].sum() > 0]
    with_positive = torch.tensor([i in rows for i in range(4)])
    ours = float(L.anchor_softmax(out[with_positive], anchors, pos[with_positive], neg[with_positive], sigma, gamma))
    reference = 0.0
    for i in rows:
        negatives = sum(math.exp(gamma * logits[i, j]) for j in range(6) if neg[i, j])
        terms = [math.log(math.exp(gamma * (logits[i, j] - sigma)) / (math.exp(gamma * (logits[i, j] - sigma)) + negatives))
                 for j in range(6) if pos[i, j]]
        reference += -sum(terms) / len(terms)
    assert abs(ours - reference / len(rows)) < 1e-9

    similar = []
    for i in range(4):
        if part[i].sum() == 0:
            continue
        own = math.exp(gamma * (sum(logits[i, j] * float(weighted[i, j]) for j in range(6)) - sigma))
        negatives = sum(math.exp(gamma * logits[i, j]) for j in range(6) if neg[i, j])
        similar.append(-math.log(own / (own + negatives)))
    assert abs(float(L.weighted_anchor_softmax(out, anchors, part, weighted, neg, sigma, gamma)) - np.mean(similar)) < 1e-9

    class_codes = torch.tensor(np.sign(rng.standard_normal((4, k))))
    logits_c = (out @ class_codes.T).numpy() / k
    total = 0.0
    for i in range(4):
        y = LABELS[i].numpy()
        own = math.exp(gamma * (sum(logits_c[i, j] for j in range(4) if y[j]) / y.sum() - sigma))
        negatives = sum(math.exp(gamma * logits_c[i, j]) for j in range(4) if not y[j])
        total += -math.log(own / (own + negatives))
    assert abs(float(L.mean_anchor_softmax(out, class_codes, LABELS, 1 - LABELS, sigma, gamma)) - total / 4) < 1e-9


def test_similar_term_is_zero_without_partial_positives():
    out = torch.randn(3, 4, requires_grad=True)
    zeros = torch.zeros(3, 5)
    value = L.weighted_anchor_softmax(out, torch.ones(5, 4), zeros, zeros, torch.ones(3, 5), 0.2, 20.0)
    assert float(value.detach()) == 0.0 and not torch.isnan(value.detach())
    value.backward()
    assert torch.equal(out.grad, torch.zeros_like(out))


def test_branch_shapes_and_ranges():
    torch.manual_seed(0)
    labels = (torch.rand(5, 7) < 0.4).float()
    branch = ProxyBranch(torch.nn.Linear(30, 512), 7, 16)
    codes = branch(torch.randn(5, 30), labels)
    assert codes.shape == (5, 16) and torch.allclose(codes.norm(dim=1), torch.ones(5), atol=1e-6)
    assert LabelBranch(7)(labels).shape == (5, 512)
    proxies = ClassProxyGenerator(7, 16)(torch.eye(7))
    assert proxies.shape == (7, 16) and torch.allclose(proxies.norm(dim=1), torch.ones(7), atol=1e-6)


# a budget of 2: round(80·2/220) = 1 proxy epoch and 2 hashing epochs
SMALL = dict(method="daph", dataset="toy", bits=16, seed=0, device="cpu", quiet=True,
             dataset_options={"size": 200}, epochs=2)


def test_proxies_are_reused_and_recomputed_when_settings_change(tmp_path):
    before = set((cache_home() / "daph-proxies").glob("*.pt")) if (cache_home() / "daph-proxies").exists() else set()
    # stage 1 only: the proxies are saved, nothing is scored, no result file is written
    stage1 = run(RunRequest(**SMALL, hparams={"stage": "proxies"}, results_dir=tmp_path / "a"))
    created = set((cache_home() / "daph-proxies").glob("*.pt")) - before
    assert stage1.path is None and not list((tmp_path / "a").rglob("*.json"))
    assert len(created) == 1 and stage1.result["artifacts"]["daph_proxies"] == str(created.pop())
    assert [h["stage"] for h in stage1.result["training"]["history"]] == ["proxies"]
    # stage 2 alone, with other stage-2 settings: the saved proxies are reused, stage 2 trains
    again = run(RunRequest(**SMALL, hparams={"stage": "hashing", "eta": "0.5"}, results_dir=tmp_path / "c"))
    assert any(h.get("reused") for h in again.result["training"]["history"]) and again.path.exists()
    # a stage-1 setting changes: new proxies
    run(RunRequest(**SMALL, hparams={"alpha": "0.3"}, results_dir=tmp_path / "d"))
    assert len(set((cache_home() / "daph-proxies").glob("*.pt")) - before) == 2
    # stage 2 alone where no proxies exist for the settings: an error naming the way out
    with pytest.raises(CmhbenchError, match="stage=hashing needs saved proxy codes.*stage=proxies"):
        run(RunRequest(**SMALL, hparams={"stage": "hashing", "alpha": "0.4"}, results_dir=tmp_path / "e"))


def test_joint_training_moves_proxies_and_hashing_together(tmp_path):
    before = set((cache_home() / "daph-proxies").glob("*.pt")) if (cache_home() / "daph-proxies").exists() else set()
    outcome = run(RunRequest(**SMALL, hparams={"stage": "joint"}, results_dir=tmp_path))
    history = outcome.result["training"]["history"]
    # the proxy network trains in the joint loop's first round(80·2/220) = 1 epoch only
    assert [h["stage"] for h in history] == ["joint"] * 2 and ["proxy_loss" in h for h in history] == [True, False]
    assert all(math.isfinite(h["image_loss"]) and math.isfinite(h["text_loss"]) for h in history)
    assert outcome.result["artifacts"] == {}  # moving proxies are not a reusable artifact
    assert set((cache_home() / "daph-proxies").glob("*.pt")) == before


def test_resume_mid_stage_gives_the_same_result(tmp_path, monkeypatch):
    """Crashes in stage 1 (checkpoint 1: the budget of 6 gives 2 proxy and 6 hashing epochs) and in
    stage 2 (checkpoint 3: after the two proxy epochs, the last of which reads the proxies out, and
    one hashing epoch). From the last proxy epoch on, checkpoints carry the proxy codes but not the
    stage-1 networks."""
    options = dict(SMALL, dataset_options={"size": 200, "seed": 5}, epochs=6)
    reference = run(RunRequest(**options, results_dir=tmp_path / "a"))
    for crash_at, folder, resumed_from in ((1, "b", {"proxies": 1}), (3, "c", {"proxies": 2, "hashing": 1})):
        for artifact in (cache_home() / "daph-proxies").glob("*.pt"):
            artifact.unlink()  # the interrupted run must recompute its proxies as the reference did
        crash_after_checkpoints(monkeypatch, crash_at)
        with pytest.raises(KeyboardInterrupt):
            run(RunRequest(**options, results_dir=tmp_path / folder))
        monkeypatch.undo()
        (checkpoint,) = (tmp_path / folder).rglob("checkpoint.pt")
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)["method"]
        assert ("image_proxy" in saved) == (crash_at == 1) and ((saved["proxies"] is None) == (crash_at == 1))
        resumed = run(RunRequest(**options, results_dir=tmp_path / folder))
        assert resumed.result["training"]["resumed_from"] == resumed_from
        assert resumed.result["metrics"] == reference.result["metrics"]


def test_daph_on_toy_v2(tmp_path):
    """The toy protocol v2 (pretrained toy-cnn, budget 120: 44 proxy + 120 hashing epochs, quick
    preset). Measured (61 s of training on 2 cores): i2t 0.859, t2i 0.839 against 0.29 for random
    codes."""
    from test_runner import random_code_map

    outcome = run(RunRequest(method="daph", dataset="toy", bits=32, seed=0, device="cpu", quiet=True,
                             results_dir=tmp_path))
    baseline = random_code_map({}, 32)
    assert outcome.result["training"]["epochs"] == {"proxies": {"planned": 44, "run": 44},
                                                    "hashing": {"planned": 120, "run": 120}}
    for direction in ("i2t", "t2i"):
        assert outcome.result["metrics"][direction]["map"] > baseline + 0.3, (direction, baseline)
