"""BertAdam: the optimiser DCHMT and MITH fine-tune CLIP with (HuggingFace's early BERT Adam,
copied into both releases' ``model/optimization.py``), with its quirks kept, since they shape the
schedule a run follows:

* no bias correction: update = m / (√v + eps), with m and v the plain moving averages;
* each parameter tensor's gradient is clipped to norm ``max_grad_norm`` on its own, not globally;
* decoupled weight decay on every parameter (biases, norms and embeddings included):
  update += weight_decay · p;
* the rate at a parameter's step t is lr · schedule(t / total_steps), t counted from 0, so the first
  update has rate 0; ``warmup_cosine``: x / warmup below ``warmup``, then ½(1 + cos πx), not
  rescaled after the warm-up (the rate drops from 1 to ½(1 + cos π·warmup) there);
* parameters without a gradient are skipped, weight decay included.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch.nn.utils import clip_grad_norm_


def warmup_cosine(progress: float, warmup: float) -> float:
    if progress < warmup:
        return progress / warmup
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class BertAdam(torch.optim.Optimizer):
    """See the module docstring. ``total_steps`` is the number of optimiser steps the run makes
    (batches per epoch × epochs), which the schedule is laid over."""

    def __init__(self, params: Iterable, lr: float, total_steps: int, warmup: float = 0.1, betas=(0.9, 0.98),
                 eps: float = 1e-6, weight_decay: float = 0.01, max_grad_norm: float = 1.0):
        if total_steps < 1:
            raise ValueError(f"BertAdam: total_steps must be at least 1, got {total_steps}")
        defaults = dict(lr=lr, total_steps=total_steps, warmup=warmup, betas=tuple(betas), eps=eps,
                        weight_decay=weight_decay, max_grad_norm=max_grad_norm)
        super().__init__(params, defaults)

    @classmethod
    def for_fine_tuning(cls, backbone_params, head_params, hp) -> "BertAdam":
        """The two releases' setting: the backbone at ``hp.clip_lr``, the heads at ``hp.lr``, betas
        (0.9, 0.98), eps 1e-6, clipping at 1.0, ``hp.weight_decay`` and ``hp.warmup_proportion``; the
        schedule's length is laid by `lay_schedule` once the run's budget is known."""
        return cls([{"params": list(backbone_params), "lr": hp.clip_lr}, {"params": list(head_params), "lr": hp.lr}],
                   lr=hp.lr, total_steps=1, warmup=hp.warmup_proportion, betas=(0.9, 0.98), eps=1e-6,
                   weight_decay=hp.weight_decay, max_grad_norm=1.0)

    def lay_schedule(self, batches_per_epoch: int, epochs: int) -> None:
        """Lay warm-up and cosine over the run's steps (the releases' len(loader) × epochs)."""
        for group in self.param_groups:
            group["total_steps"] = batches_per_epoch * epochs

    def scheduled_lr(self, group: dict, step: int) -> float:
        return group["lr"] * warmup_cosine(step / group["total_steps"], group["warmup"])

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["next_m"] = torch.zeros_like(p)
                    state["next_v"] = torch.zeros_like(p)
                if group["max_grad_norm"] > 0:
                    clip_grad_norm_(p, group["max_grad_norm"])
                grad = p.grad
                state["next_m"].mul_(beta1).add_(grad, alpha=1 - beta1)
                state["next_v"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                update = state["next_m"] / (state["next_v"].sqrt() + group["eps"])
                if group["weight_decay"] > 0:
                    update.add_(p, alpha=group["weight_decay"])
                p.add_(update, alpha=-self.scheduled_lr(group, state["step"]))
                state["step"] += 1
        return loss
