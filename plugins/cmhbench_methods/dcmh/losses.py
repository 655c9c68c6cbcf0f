"""DCMH's objective: the batch terms its gradient step uses, and the full objective it logs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cmhbench.toolkit import similarity


def batch_loss(out: torch.Tensor, idx: torch.Tensor, own: torch.Tensor, other: torch.Tensor,
               codes: torch.Tensor, s: torch.Tensor, gamma: float, eta: float) -> torch.Tensor:
    """The DCMH objective's terms that depend on one batch of one modality, divided by batch·N.

    ``out`` (b×K) are the batch's live outputs; ``own`` (K×N) this modality's stored outputs (the
    batch's columns included), ``other`` (K×N) the other modality's, ``codes`` B (K×N), ``s`` the
    b×N similarity rows. Its gradient is the release's hand-written one: ½·other·(σ(Θ) − S)ᵀ +
    2γ(out − B) + 2η·own·1, over batch·N.
    """
    n = own.shape[1]
    theta = 0.5 * out @ other  # (b, N): Θ between this batch and every training item
    likelihood = (F.softplus(theta) - s * theta).sum()
    quantisation = ((codes[:, idx].T - out) ** 2).sum()
    # ‖own·1‖² with this batch's columns live and every other column fixed
    others_sum = own.sum(1) - own[:, idx].sum(1)
    balance = ((out.sum(0) + others_sum) ** 2).sum()
    return (likelihood + gamma * quantisation + eta * balance) / (len(idx) * n)


def objective(image_out: torch.Tensor, text_out: torch.Tensor, codes: torch.Tensor, labels: torch.Tensor,
              gamma: float, eta: float) -> float:
    """The full objective over the training set (the release's ``calc_loss``); F, G, B are K×N."""
    theta = 0.5 * image_out.T @ text_out
    s = similarity(labels, labels)
    likelihood = (F.softplus(theta) - s * theta).sum()
    quantisation = ((image_out - codes) ** 2).sum() + ((text_out - codes) ** 2).sum()
    balance = (image_out.sum(1) ** 2).sum() + (text_out.sum(1) ** 2).sum()
    return float(likelihood + gamma * quantisation + eta * balance)
