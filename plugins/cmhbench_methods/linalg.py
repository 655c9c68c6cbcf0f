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


def covariance(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    return x.T @ (x if y is None else y)


def ridge(matrix: torch.Tensor, weight: float) -> torch.Tensor:
    return matrix + weight * torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)


def informative(values: torch.Tensor, relative: float = 1e-9) -> torch.Tensor:
    """Mask of eigenvalues that carry information: beyond the rank of a cross-covariance (e.g. more
    bits than a 10-d text feature has dimensions) eigenvalues are zero and their eigenvectors
    arbitrary; the methods turn those bits into constants so that they never change a ranking."""
    return values > relative * values.abs().max().clamp(min=1e-300)
