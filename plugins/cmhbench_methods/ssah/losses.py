"""SSAH's losses: the pairwise term in the paper's and the code's forms, and each network's objective."""

from __future__ import annotations

import torch
import torch.nn.functional as F

REDUCTIONS = {"sum": torch.sum, "half_sum": lambda x: 0.5 * x.sum(), "mean": torch.mean}


def pairwise(anchor: torch.Tensor, batch: torch.Tensor, s: torch.Tensor, form: str, reduce=torch.sum) -> torch.Tensor:
    """Θ = ½·anchor·batchᵀ (N×b). 'likelihood': log(1+e^Θ) − SΘ (the paper's negative
    log-likelihood); 'code': (SΘ − log(1+e^Θ))², the official code's squared error; reduced over
    every pair by ``reduce``."""
    theta = 0.5 * anchor @ batch.T
    if form == "likelihood":
        return reduce(F.softplus(theta) - s * theta)
    if form == "code":
        return reduce((s * theta - F.softplus(theta)) ** 2)
    raise ValueError(f"pairwise={form!r}: expected 'likelihood' or 'code'")


def modality_loss(hp, hash_out, feature, label_pred, labels, s, label_features, h_all, adversarial_logits=None):
    """α·pairwise(features) + γ·pairwise(hash) + β·quantisation + η·label (+ δ·adversarial).

    The squared terms are reduced by ``reduction``: ``sum`` (the paper's Σ and Frobenius norms),
    ``half_sum`` (the code's ``tf.nn.l2_loss``) or ``mean``; the adversarial cross-entropy is a
    mean in every case, as in the code."""
    reduce = REDUCTIONS[hp.reduction]
    loss = (hp.alpha * pairwise(label_features, feature, s, hp.pairwise, reduce)
            + hp.gamma * pairwise(h_all, hash_out, s, hp.pairwise, reduce)
            + hp.beta * reduce((torch.sign(hash_out).detach() - hash_out) ** 2)
            + hp.eta * reduce((labels - label_pred) ** 2))
    if adversarial_logits is not None:
        loss = loss + hp.delta * F.binary_cross_entropy_with_logits(
            adversarial_logits, torch.ones_like(adversarial_logits))
    return loss


def discriminator_loss(dis_img, dis_txt, features) -> torch.Tensor:
    """Image and text semantic features are "fake" (0), LabNet's are "real" (1), for both discriminators."""
    logits = [dis_img(features["img"]), dis_txt(features["txt"]), dis_img(features["lab"]), dis_txt(features["lab"])]
    targets = [0.0, 0.0, 1.0, 1.0]
    return sum(F.binary_cross_entropy_with_logits(logit, torch.full_like(logit, target))
               for logit, target in zip(logits, targets, strict=True)) / 4
