"""MITH's objective (DarrenZZhang/MM23-MITH train_asym.py: ``compute_loss`` and the functions it calls)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

TEMPERATURE = 0.07  # fixed in the release


def likelihood(bank: torch.Tensor, batch: torch.Tensor, similar: torch.Tensor) -> torch.Tensor:
    """−mean(S ⊙ s − log(1 + e^s)), s = ½·clamp(bank·batchᵀ, ±64): every training item's stored code
    against the batch's (``similar`` is N_train×B)."""
    s = 0.5 * (bank @ batch.T).clamp(min=-64, max=64)
    return -(similar * s - torch.log(1 + torch.exp(s))).mean()


def info_nce(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The symmetric InfoNCE of matched rows of two L2-normalised sets."""
    scores = a @ b.T / TEMPERATURE
    targets = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(scores, targets) + F.cross_entropy(scores.T, targets))


def token_info_nce(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """InfoNCE between each item's K image and K text concept tokens (N×K×D): concept k matches
    concept k, over every item's K×K scores."""
    scores = torch.bmm(a, b.transpose(1, 2)) / TEMPERATURE
    k = scores.shape[1]
    targets = torch.arange(k, device=a.device).repeat(len(a))
    return 0.5 * (F.cross_entropy(scores.reshape(-1, k), targets)
                  + F.cross_entropy(scores.transpose(1, 2).reshape(-1, k), targets))


def mith_losses(image, text, banks, similar, target, bits, hp) -> dict[str, torch.Tensor]:
    """The five weighted terms (summed by the caller). ``image``/``text``: HashingModule outputs;
    ``banks``: the stored codes (updated with this batch first); ``target``: B = sign(λ·global +
    (1 − λ)·local), summed over both modalities."""
    batch = len(target)
    quantise = lambda h: F.mse_loss(h, target, reduction="sum") / batch / bits  # noqa: E731
    sum_sq = lambda a, b: F.mse_loss(a, b, reduction="sum")  # noqa: E731
    gi, gt, li, lt = image["global_hash"], text["global_hash"], image["token_hash"], text["token_hash"]
    # the teacher (global) pulls the student (local) at full strength and is pulled back at 0.1
    distill = (sum_sq(gi.detach(), li) + sum_sq(gt.detach(), lt)
               + 0.1 * (sum_sq(gi, li.detach()) + sum_sq(gt, lt.detach())))
    return {
        "tokens_intra": hp.hyper_tokens_intra * (likelihood(banks["image_tokens"], li, similar)
                                                 + likelihood(banks["text_tokens"], lt, similar)),
        "global_inter": hp.hyper_cls_inter * (likelihood(banks["image_global"], gt, similar)
                                              + likelihood(banks["text_global"], gi, similar)),
        "quantisation": hp.hyper_quan * (quantise(0.5 * gi + 0.5 * li) + quantise(0.5 * gt + 0.5 * lt)),
        "info_nce": hp.hyper_info_nce * (info_nce(image["global_feature"], text["global_feature"])
                                         + hp.hyper_alpha * token_info_nce(image["concepts"], text["concepts"])),
        "distillation": hp.hyper_distill * distill / batch,
    }
