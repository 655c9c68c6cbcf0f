"""DSPH's semantic-aware proxy loss (QinLab-WFU/DSPH utils/utils.py: ``HyP.forward``, the HyP² loss
of Xu et al. carried to two modalities), on the heads' tanh outputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def proxy_terms(codes: torch.Tensor, proxy_directions: torch.Tensor, positive: torch.Tensor,
                positives: torch.Tensor, negatives: torch.Tensor, delta: float) -> torch.Tensor:
    """Pull each item to the proxies of its labels (1 − cos, averaged over the batch's positive
    item–label cells) and push it from the others beyond cos = δ (averaged over the negative cells)."""
    cos = F.normalize(codes, dim=1) @ proxy_directions.T
    pull = ((1 - cos) * positive).sum() / positives
    push = (F.relu(cos - delta) * ~positive).sum() / negatives
    return pull + push


def dsph_loss(image: torch.Tensor, text: torch.Tensor, proxies: torch.Tensor, labels: torch.Tensor,
              delta: float, alpha: float) -> torch.Tensor:
    """Both modalities' proxy terms, plus α times the irrelevant terms: image–image, text–text and
    image–text cosines beyond δ, averaged over the pairs of multi-label items that share no label
    (zero where the batch has none). Counts are taken on the device (no host sync per step); the
    release divides by zero where a batch has no negative cell, here such a batch adds nothing."""
    positive = labels > 0
    positives = positive.sum().clamp(min=1)
    negatives = (~positive).sum().clamp(min=1)
    directions = F.normalize(proxies, dim=1)
    loss = (proxy_terms(image, directions, positive, positives, negatives, delta)
            + proxy_terms(text, directions, positive, positives, negatives, delta))
    if alpha > 0:
        multi = positive.sum(dim=1) > 1
        label_float = labels.float()
        unrelated = (label_float @ label_float.T == 0) & multi[:, None] & multi[None, :]
        pairs = unrelated.sum().clamp(min=1)
        v, t = F.normalize(image, dim=1), F.normalize(text, dim=1)
        for a, b in ((v, v), (t, t), (v, t)):
            loss = loss + alpha * (F.relu(a @ b.T - delta) * unrelated).sum() / pairs
    return loss
