"""CVH: Cross-View Hashing (Kumar & Udupa, IJCAI 2011).

For two paired views the paper's spectral relaxation is the generalized eigenvalue problem

    C_xy C_yy⁻¹ C_yx a = μ C_xx a,        b = C_yy⁻¹ C_yx a / √μ,

on centred features (C_xx = XᵀX + εI, C_yy = YᵀY + εI, C_xy = XᵀY); the top-K eigenvectors are the
image projections, codes are signs; ``form=copied`` and constant bits: docs/methods/shallow.md.
"""

from __future__ import annotations

import torch

from cmhbench.toolkit import LinearHashing
from cmhbench_methods.linalg import (cholesky_factors, covariance, generalized_eigh, informative, leading_pairs,
                                     regularised)


def cvh_projections(x: torch.Tensor, y: torch.Tensor, bits: int, relative_reg: float = 1e-4,
                    form: str = "paper") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(A, B, μ) for centred x (n×dx) and y (n×dy)."""
    cxx = regularised(covariance(x), relative_reg)
    cyy = regularised(covariance(y), relative_reg)
    cxy = covariance(x, y)
    if bits > cxx.shape[0]:
        raise ValueError(f"{bits} bits exceed the image feature width {cxx.shape[0]}")
    if form == "paper":
        return leading_pairs(cxy, *cholesky_factors(cxx, cyy), bits)
    if form != "copied":
        raise ValueError(f"form={form!r}: expected 'paper' or 'copied'")
    # C_xy C_yy C_yx: not of the paired form, so a full generalized eigendecomposition
    values, vectors = generalized_eigh(cxy @ cyy @ cxy.T, cxx)
    a, mu = vectors[:, :bits], values[:bits]
    b = torch.linalg.solve(cyy, cxy.T @ a) / mu.clamp(min=1e-12).sqrt()
    keep = informative(mu).to(a.dtype)
    return a * keep, b * keep, mu


class CVH(LinearHashing):
    def solve(self, x, y, labels, ctx):
        a, b, mu = cvh_projections(x, y, self.bits, self.hp.regularisation, self.hp.form)
        ctx.log("solve", 0, top_eigenvalue=float(mu[0]), last_eigenvalue=float(mu[-1]))
        return a, b
