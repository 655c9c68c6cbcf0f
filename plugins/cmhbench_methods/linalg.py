"""Dense linear algebra for the shallow methods, in torch float64 on any device."""

from __future__ import annotations

import torch


def generalized_eigh(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve A v = λ B v for symmetric A and symmetric positive definite B.

    Reduced through the Cholesky factor of B (B = L Lᵀ, A' = L⁻¹ A L⁻ᵀ, v = L⁻ᵀ v'), which is what
    scipy.linalg.eigh does; eigenvalues come back in descending order, eigenvectors B-orthonormal.
    """
    a = 0.5 * (a + a.T)
    chol = torch.linalg.cholesky(0.5 * (b + b.T))
    left = torch.linalg.solve_triangular(chol, a, upper=False)
    reduced = torch.linalg.solve_triangular(chol, left.T, upper=False).T
    values, vectors = torch.linalg.eigh(0.5 * (reduced + reduced.T))
    vectors = torch.linalg.solve_triangular(chol.T, vectors, upper=True)
    order = torch.argsort(values, descending=True)
    return values[order], vectors[:, order]


def cholesky_factors(cxx: torch.Tensor, cyy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower Cholesky factors of two (symmetrised) covariances, for `leading_pairs`."""
    return torch.linalg.cholesky(0.5 * (cxx + cxx.T)), torch.linalg.cholesky(0.5 * (cyy + cyy.T))


def leading_pairs(c: torch.Tensor, chol_x: torch.Tensor, chol_y: torch.Tensor,
                  count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``count`` leading pairs (wx, wy, λ) of max wxᵀ C wy s.t. wxᵀ Cxx wx = wyᵀ Cyy wy = 1,
    i.e. C Cyy⁻¹ Cᵀ wx = λ Cxx wx and wy = Cyy⁻¹ Cᵀ wx / √λ (CVH with C = C_xy, SCM with C = XᵀSY).

    Solved as the SVD of M = Lx⁻¹ C Ly⁻ᵀ (Cxx = Lx Lxᵀ, Cyy = Ly Lyᵀ): C Cyy⁻¹ Cᵀ reduced by Lx is
    M Mᵀ, so its eigenvectors are M's left singular vectors and λ = σ². Exact, and
    O(dx·dy·min(dx, dy)) instead of the O(dx³) of a full eigendecomposition (SCM-seq solves one per
    bit, on 4096-d CNN features). Pairs beyond the rank of C are zero: constant bits.
    """
    m = torch.linalg.solve_triangular(chol_y, torch.linalg.solve_triangular(chol_x, c, upper=False).T,
                                      upper=False).T
    u, sigma, _ = torch.linalg.svd(m, full_matrices=False)
    values = sigma[:count] ** 2
    wx = torch.linalg.solve_triangular(chol_x.T, u[:, :count], upper=True)
    keep = informative(sigma ** 2)[:count].to(wx.dtype)
    wy = torch.cholesky_solve(c.T @ wx, chol_y) / sigma[:count].clamp(min=1e-6)
    pad = count - values.numel()  # fewer dimensions than pairs asked for
    if pad > 0:
        wx, wy = (torch.cat([w, w.new_zeros(w.shape[0], pad)], 1) for w in (wx, wy))
        keep, values = (torch.cat([v, v.new_zeros(pad)]) for v in (keep, values))
    return wx * keep, wy * keep, values


def covariance(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    return x.T @ (x if y is None else y)


def ridge(matrix: torch.Tensor, weight: float) -> torch.Tensor:
    return matrix + weight * torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)


def regularised(matrix: torch.Tensor, relative: float) -> torch.Tensor:
    """A ridge relative to the mean diagonal, so the setting does not depend on feature scale."""
    return ridge(matrix, relative * float(torch.diagonal(matrix).mean()) + 1e-12)


def informative(values: torch.Tensor, relative: float = 1e-9) -> torch.Tensor:
    """Mask of eigenvalues that carry information: beyond the rank of a cross-covariance (e.g. more
    bits than a 10-d text feature has dimensions) eigenvalues are zero and their eigenvectors
    arbitrary; the methods turn those bits into constants so that they never change a ranking."""
    return values > relative * values.abs().max().clamp(min=1e-300)
