"""ridge-codes: a small supervised linear hashing method, written against cmhbench's public API.

Targets T = sign(L R) for a random Gaussian label projection R (C×K); for each modality, standardised
inputs X (pixels are average-pooled to 8×8×3 first) are mapped to T by ridge regression,
W = (XᵀX + λI)⁻¹ XᵀT, solved in float64. No epochs: one closed-form solve.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cmhbench.toolkit import HashingMethod, MethodSetup, to_codes


class RidgeCodes(HashingMethod):
    stateful = ("weights", "stats")

    def __init__(self, setup: MethodSetup):
        super().__init__(setup)
        self.weights: dict[str, torch.Tensor] = {}
        self.stats: dict[str, list[torch.Tensor]] = {}

    def _features(self, raw: torch.Tensor, modality: str) -> torch.Tensor:
        if modality == "image" and raw.dtype == torch.uint8:
            pixels = raw.permute(0, 3, 1, 2).float() / 255.0
            raw = F.adaptive_avg_pool2d(pixels, self.hp.pool).flatten(1)
        return raw.double()

    def fit(self, train, ctx) -> None:
        for _ in ctx.epochs("solve", published=1):
            projection = torch.randn(train.num_labels, self.bits, generator=ctx.generator,
                                     dtype=torch.float64).to(self.device)
            targets = torch.where(train.labels.double() @ projection >= 0, 1.0, -1.0).double()
            for modality in ("image", "text"):
                parts = [self._features(getattr(b, f"{modality}s"), modality)
                         for b in train.batches(512, modalities=(modality,))]
                x = torch.cat(parts)
                mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
                x = (x - mean) / std
                gram = x.T @ x + self.hp.ridge * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
                self.weights[modality] = torch.linalg.solve(gram, x.T @ targets)
                self.stats[modality] = [mean, std]

    def _encode(self, raw: torch.Tensor, modality: str) -> torch.Tensor:
        mean, std = self.stats[modality]
        return to_codes(((self._features(raw, modality) - mean) / std) @ self.weights[modality])

    def encode_image(self, images):
        return self._encode(images, "image")

    def encode_text(self, texts):
        return self._encode(texts, "text")
