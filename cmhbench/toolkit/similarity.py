"""Label similarity between item sets."""

from __future__ import annotations

import torch


def similarity(labels_a: torch.Tensor, labels_b: torch.Tensor) -> torch.Tensor:
    """S_ij = 1 when items i and j share at least one label, else 0 (float)."""
    return (labels_a @ labels_b.T > 0).float()
