"""DAPH's loss terms as pure functions (float64-testable), following the official code.

Stage 1 (data-aware proxy network): ``class_separation`` (L1), ``proxy_softmax`` (L3, per modality),
``balance`` (L2), ``quantisation`` (L_qtf). Stage 2 (modality-specific hashing): ``anchor_softmax``
(L_same), ``mean_anchor_softmax`` (L_class), ``weighted_anchor_softmax`` (L_similar), with the
anchor selections of ``select_anchors``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-5


def class_separation(class_codes: torch.Tensor) -> torch.Tensor:
    """L1 = Σ ReLU(PPᵀ − I)²: pushes the class proxies apart."""
    eye = torch.eye(class_codes.shape[0], dtype=class_codes.dtype, device=class_codes.device)
    return F.relu(class_codes @ class_codes.T - eye).pow(2).sum()


def proxy_softmax(codes: torch.Tensor, class_codes: torch.Tensor, labels: torch.Tensor,
                  gamma: float, sigma: float) -> torch.Tensor:
    """L3 for one modality, summed over the batch, as the official code computes it.

    For item i and each positive class j: −log[e^{γ(h·p_j − σ)} / (e^{γ(h·p_j − σ)} + Σ_k D_k)],
    averaged over the item's positive classes, where the official code's denominator term is
    D_k = exp(γ·h·p_k·(1 − y_k)): e^{γ h·p_k} for each negative class k and e⁰ = 1 for each positive
    class (the paper's notation has only the negative classes).
    """
    logit = codes @ class_codes.T
    own = torch.exp((logit - sigma) * gamma) * labels
    denominator = torch.exp(logit * (1 - labels) * gamma).sum(1, keepdim=True) + own
    per_class = torch.log(own / (denominator + EPS) + EPS + 1 - labels)
    return -(per_class.sum(1) / labels.sum(1)).sum()


def balance(*code_sets: torch.Tensor) -> torch.Tensor:
    """L2 = Σ over the given sets of ‖Σ_rows codes‖²."""
    return sum(codes.sum(0).pow(2).sum() for codes in code_sets)


def quantisation(*code_sets: torch.Tensor) -> torch.Tensor:
    """L_qtf = Σ (⟨normalise(sign h), h⟩ − 1)² over every row of every set."""
    return sum(((F.normalize(torch.sign(h)) * h).sum(1) - 1.0).pow(2).sum() for h in code_sets)


def select_anchors(labels: torch.Tensor, anchor_labels: torch.Tensor, image_epoch: bool
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(positive, negative, partial, weighted partial) masks between a batch and the anchors.

    Image epochs: positive = exactly the same label set; text epochs: positive = the anchor has all
    of the item's labels. Negative = no shared label; partial = the rest. The partial weights are
    the shared-label counts, divided by the sum of shared-label counts over all anchors (the code's
    normalisation).
    """
    shared = labels @ anchor_labels.T
    own_count = labels.sum(1, keepdim=True)
    if image_epoch:
        positive = ((shared > own_count - 0.2) & (shared > anchor_labels.sum(1).view(1, -1) - 0.2)).to(labels.dtype)
        negative = 1.0 - (shared > 0).to(labels.dtype)
        partial = 1.0 - positive - negative
    else:
        positive = (shared > own_count - 0.2).to(labels.dtype)
        negative = 1.0 - (shared > 0).to(labels.dtype)
        partial = (1.0 - negative) * (shared < own_count - 0.2).to(labels.dtype)
    weighted = partial * shared / (shared.sum(1, keepdim=True) + EPS)
    return positive, negative, partial, weighted


def anchor_softmax(out, anchors, positive, negative, sigma, gamma) -> torch.Tensor:
    """L_same: each positive anchor against the negatives, logits ⟨u, a⟩/K, margin σ, scale γ."""
    k = out.shape[1]
    logit = out @ anchors.T
    own = torch.exp((logit / k - sigma) * gamma) * positive
    denominator = (torch.exp(logit * gamma / k) * negative).sum(1, keepdim=True) + own
    tiny = (denominator < EPS).to(out.dtype).detach()
    ratio = torch.log((own + (1 - positive) * EPS) / (denominator + tiny * EPS)) * positive
    return -(ratio.sum(1) / positive.sum(1)).sum() / out.shape[0]


def mean_anchor_softmax(out, anchors, positive, negative, sigma, gamma) -> torch.Tensor:
    """L_class: the mean logit over the item's own class proxies against the other classes'."""
    k = out.shape[1]
    logit = out @ anchors.T
    own = torch.exp(((logit * positive).sum(1) / (positive.sum(1) * k) - sigma) * gamma)
    denominator = (torch.exp(logit * gamma / k) * negative).sum(1) + own
    return -torch.log(own / denominator).sum() / out.shape[0]


def weighted_anchor_softmax(out, anchors, partial, weighted, negative, sigma, gamma) -> torch.Tensor:
    """L_similar: partial positives weighted by label overlap against the negatives, averaged over
    the items that have partial positives. The official code divides 0 by 0 when a batch has none
    (always, on single-label data); that case contributes 0 here."""
    k = out.shape[1]
    logit = out @ anchors.T
    own = torch.exp(((logit * weighted / k).sum(1) - sigma) * gamma)
    denominator = (torch.exp(logit * gamma / k) * negative).sum(1) + own
    has_partial = (partial.sum(1) > 0.1).to(out.dtype)
    tiny = (denominator < EPS).to(out.dtype)
    terms = torch.log(own / (denominator + tiny * EPS) + (1 - has_partial) * EPS) * has_partial
    # with no partial positives every term is 0: clamping the count gives that 0 without asking the
    # device whether the batch has any (a host sync per step)
    return -terms.sum() / has_partial.sum().clamp(min=1)


def proxy_objective(hp, h_v, h_t, p, labels) -> torch.Tensor:
    """Stage 1's loss on one batch: L1 + L3(image) + L3(text) + β·L_qtf + α·L2, each term behind its
    ablation switch; ``label_only_class_codes`` learns the class proxies from L1, L2 and L_qtf on
    themselves alone (the data terms see them detached)."""
    if hp.label_only_class_codes:
        loss = class_separation(p) + hp.alpha * balance(p) + hp.beta * quantisation(p)
        return loss + _data_terms(hp, h_v, h_t, p.detach(), labels)
    loss = class_separation(p) if hp.use_l1 else 0.0
    loss = loss + _data_terms(hp, h_v, h_t, p, labels)
    if hp.use_qtf:
        loss = loss + hp.beta * quantisation(h_v, p, h_t)
    if hp.use_l2:
        loss = loss + hp.alpha * balance(p, h_t, h_v)
    return loss


def _data_terms(hp, h_v, h_t, p, labels):
    if not hp.use_l3:
        return 0.0
    return (proxy_softmax(h_v, p, labels, hp.gamma, hp.sigma)
            + proxy_softmax(h_t, p, labels, hp.gamma, hp.sigma))


def hashing_objective(hp, out, labels, proxies, image_epoch: bool) -> torch.Tensor:
    """Stage 2's loss on one batch of one modality: L_same and η·L_similar against the image and the
    text proxies of the training items, and L_class against the class proxies."""
    positive, negative, partial, weighted = select_anchors(labels, proxies["labels"], image_epoch)
    loss = out.sum() * 0.0
    for anchors in (proxies["image"], proxies["text"]):
        if hp.use_same:
            loss = loss + anchor_softmax(out, anchors, positive, negative, hp.sigma, hp.gamma)
        if hp.use_similar:
            loss = loss + hp.eta * weighted_anchor_softmax(out, anchors, partial, weighted, negative, hp.sigma, hp.gamma)
    if hp.use_class:
        loss = loss + mean_anchor_softmax(out, proxies["class"], labels, 1 - labels, hp.sigma, hp.gamma)
    return loss
