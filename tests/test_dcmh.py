"""DCMH: the loss against the official release's hand-derived gradient and objective (float64)."""

from __future__ import annotations

import numpy as np
import torch
from cmhbench_methods.dcmh.losses import batch_loss

from cmhbench.toolkit import log_uniform_schedule


def test_batch_loss_gradient_matches_the_release():
    rng = np.random.default_rng(0)
    k, n, gamma, eta = 6, 20, 0.7, 1.3
    labels = (rng.random((n, 4)) < 0.4).astype(np.float64)
    own = torch.tensor(rng.normal(size=(k, n)))
    other = torch.tensor(rng.normal(size=(k, n)))
    codes = torch.sign(own + other)
    idx = torch.tensor([3, 7, 11, 0])
    out = torch.tensor(rng.normal(size=(4, k)), requires_grad=True)
    own[:, idx] = out.detach().T
    s = torch.tensor((labels[idx.numpy()] @ labels.T > 0).astype(np.float64))
    batch_loss(out, idx, own, other, codes, s, gamma, eta).backward()

    # process_DCMH.m: dJdF_b = 0.5*G*(1./(1+exp(-0.5*G'*F_b)) - S_b) + 2γ(F_b - B_b) + 2η·F·1
    own_np, G, B, F_b = own.numpy(), other.numpy(), codes.numpy(), out.detach().numpy().T
    theta = 0.5 * G.T @ F_b                                    # N×b
    expected = 0.5 * G @ (1 / (1 + np.exp(-theta)) - s.numpy().T)
    expected += 2 * gamma * (F_b - B[:, idx.numpy()]) + 2 * eta * own_np.sum(1, keepdims=True)
    expected /= len(idx) * n                                   # update_net.m: dzdw/(batch_size*N)
    np.testing.assert_allclose(out.grad.numpy().T, expected, rtol=1e-10, atol=1e-12)


def test_schedule_is_the_release_logspace():
    np.testing.assert_allclose(log_uniform_schedule(10 ** -1.5, 1e-3, 500), np.logspace(-1.5, -3, 500), rtol=1e-12)
    assert log_uniform_schedule(0.1, 0.01, 1) == [0.1]
