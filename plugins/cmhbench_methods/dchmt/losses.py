"""DCHMT's objective (kalenforn/DCHMT train/hash_train.py: ``our_loss``, ``similarity_loss``;
train/base.py: ``hash_loss``), on the heads' outputs flattened per item (2K values for "select")."""

from __future__ import annotations

import torch


def pair_loss(a: torch.Tensor, b: torch.Tensor, similar: torch.Tensor, bits: int, hp) -> torch.Tensor:
    """The positive and the negative term between two sets of outputs, summed.

    euclidean: D = ‖a_i − b_j‖; similar pairs cost D, dissimilar ones max(0, m − D) with
    m = √(2K·vartheta) (a margin at half the selection vector's bits differing); cosine: D = 1 − cos,
    similar pairs cost max(D, t) − t, dissimilar ones max(0, 1 − D). Each term is squared ("l2") or
    not ("l1") and averaged over all B² pairs, the diagonal included."""
    dissimilar = 1 - similar
    if hp.similarity_function == "euclidean":
        distance = torch.cdist(a, b, p=2.0)
        margin = float(bits * 2 * hp.vartheta) ** 0.5
        positive = distance * similar
        negative = margin * dissimilar - (distance * dissimilar).clamp(max=margin)
    else:
        distance = 1 - _normalised(a) @ _normalised(b).T
        threshold = hp.sim_threshold if hp.sim_threshold != 0 else 0.05  # the release's default when given 0
        positive = (distance * similar).clamp(min=threshold) - threshold
        negative = dissimilar - (distance * dissimilar).clamp(max=1.0)
    if hp.loss_type == "l2":
        positive, negative = positive.pow(2), negative.pow(2)
    return positive.mean() + negative.mean()


def _normalised(x: torch.Tensor) -> torch.Tensor:
    # the release leaves an all-zero batch as it is; decided on the device (no host sync per step)
    norm = x.norm(dim=-1, keepdim=True)
    return x / torch.where((x != 0).any(), norm, torch.ones_like(norm))


def quantisation_loss(x: torch.Tensor) -> torch.Tensor:
    """½ · mean over items of ‖sign(x) − x‖ (the linear head's term)."""
    return 0.5 * (torch.sign(x) - x).pow(2).sum(dim=1).sqrt().mean()


def dchmt_loss(image: torch.Tensor, text: torch.Tensor, similar: torch.Tensor, bits: int, hp) -> torch.Tensor:
    """Image–text, image–image and text–text pair losses, all of weight 1; the linear head adds the
    mean of both modalities' quantisation terms."""
    loss = (pair_loss(image, text, similar, bits, hp) + pair_loss(image, image, similar, bits, hp)
            + pair_loss(text, text, similar, bits, hp))
    if hp.hash_layer == "linear":
        loss = loss + (quantisation_loss(image) + quantisation_loss(text)) / 2
    return loss
