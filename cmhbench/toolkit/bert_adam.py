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

On a GPU the step runs as multi-tensor (``_foreach``) kernels; on the CPU as a loop over tensors
(torch's own Adam chooses the same way). Both do the same arithmetic in the same order: on the CPU
they give the same bits; the GPU's fused kernels are held to float32's last bits.
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
                 eps: float = 1e-6, weight_decay: float = 0.01, max_grad_norm: float = 1.0,
                 foreach: bool | None = None):
        if total_steps < 1:
            raise ValueError(f"BertAdam: total_steps must be at least 1, got {total_steps}")
        defaults = dict(lr=lr, total_steps=total_steps, warmup=warmup, betas=tuple(betas), eps=eps,
                        weight_decay=weight_decay, max_grad_norm=max_grad_norm)
        super().__init__(params, defaults)
        #: None: multi-tensor kernels for tensors off the CPU, a loop on it
        self.foreach = foreach

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
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if not self.state[p]:
                    self.state[p].update(step=0, next_m=torch.zeros_like(p), next_v=torch.zeros_like(p))
            foreach = self.foreach if self.foreach is not None else params[0].device.type != "cpu"
            (self._step_foreach if foreach else self._step_loop)(group, params)
        return loss

    def _step_loop(self, group: dict, params: list[torch.Tensor]) -> None:
        beta1, beta2 = group["betas"]
        for p in params:
            state = self.state[p]
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

    def _step_foreach(self, group: dict, params: list[torch.Tensor]) -> None:
        """`_step_loop` as 18 operators, 11 of them multi-tensor (a few fused kernel launches each on a
        GPU), instead of 17 per tensor (5,117 a step for CLIP ViT-B/32's two towers), whose launch
        cost on a GPU would exceed the update's own work. The price: the denominators and updates of
        every tensor exist at once, two more copies of the parameters at the step's peak."""
        grads = [p.grad for p in params]
        if group["max_grad_norm"] > 0:
            _clip_each(grads, group["max_grad_norm"])
        beta1, beta2 = group["betas"]
        next_m = [self.state[p]["next_m"] for p in params]
        next_v = [self.state[p]["next_v"] for p in params]
        torch._foreach_mul_(next_m, beta1)
        torch._foreach_add_(next_m, grads, alpha=1 - beta1)
        torch._foreach_mul_(next_v, beta2)
        torch._foreach_addcmul_(next_v, grads, grads, value=1 - beta2)
        denominators = torch._foreach_sqrt(next_v)
        torch._foreach_add_(denominators, group["eps"])
        updates = torch._foreach_div(next_m, denominators)
        del denominators
        if group["weight_decay"] > 0:
            torch._foreach_add_(updates, params, alpha=group["weight_decay"])
        # the rate follows each tensor's own step count (tensors left without a gradient fell behind)
        by_step: dict[int, list[int]] = {}
        for index, p in enumerate(params):
            by_step.setdefault(self.state[p]["step"], []).append(index)
            self.state[p]["step"] += 1
        for step, indices in by_step.items():
            torch._foreach_add_([params[i] for i in indices], [updates[i] for i in indices],
                                alpha=-self.scheduled_lr(group, step))


def _clip_each(grads: list[torch.Tensor], max_norm: float) -> None:
    """``clip_grad_norm_(g, max_norm)`` for each tensor on its own, in one pass: the same norm (the
    norm of the one-element vector of g's norm), coefficient and in-place scaling. The coefficients
    come to the host (one sync a step): a list of numbers scales every tensor in one fused kernel,
    where a list of device scalars would fall back to one launch per tensor."""
    norms = torch.stack(torch._foreach_norm(grads))
    totals = torch.linalg.vector_norm(norms.unsqueeze(1), 2.0, dim=1)
    coefficients = torch.clamp(max_norm / (totals + 1e-6), max=1.0)
    torch._foreach_mul_(grads, coefficients.tolist())
