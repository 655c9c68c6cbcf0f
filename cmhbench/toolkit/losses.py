"""Per-epoch loss means, summed on the device.

``float(loss)`` after every step makes the host wait for the GPU to finish that step before it can
queue the next one; summing detached losses on the device and reading them once per epoch keeps the
GPU fed. The sums are float64 and add the same terms in the same order as a Python float would, so
logged values do not change.
"""

from __future__ import annotations

import torch


class EpochLosses:
    """``add(weight, name=loss, ...)`` after each step; ``means(divisor)`` at the epoch's end: each
    name's weighted sum over ``divisor`` (default: the summed weights)."""

    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._weight = 0.0

    def add(self, weight: float = 1.0, **losses: torch.Tensor) -> None:
        for name, loss in losses.items():
            term = loss.detach().to(torch.float64) * weight
            self._sums[name] = self._sums[name] + term if name in self._sums else term
        self._weight += weight

    def means(self, divisor: float | None = None) -> dict[str, float]:
        divisor = self._weight if divisor is None else divisor
        return {name: float(total) / max(divisor, 1) for name, total in self._sums.items()}
