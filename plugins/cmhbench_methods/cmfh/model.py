"""CMFH: Collective Matrix Factorization Hashing (Ding, Guo & Zhou, CVPR 2014).

Rows are items: X (n×dx), Y (n×dy) centred features, V (n×K) the shared latent codes.

    min λ‖X − VU₁‖² + (1−λ)‖Y − VU₂‖² + μ(‖V − XP₁‖² + ‖V − YP₂‖²)
        + γ(‖U₁‖² + ‖U₂‖² + ‖P₁‖² + ‖P₂‖² + ‖V‖²)

solved by the paper's alternating closed-form updates (each the exact minimiser of its block, so the
objective never increases): U₁ = (VᵀV + γ/λ I)⁻¹VᵀX, U₂ = (VᵀV + γ/(1−λ) I)⁻¹VᵀY,
P₁ = (XᵀX + γ/μ I)⁻¹XᵀV, P₂ = (YᵀY + γ/μ I)⁻¹YᵀV, and
V = (λXU₁ᵀ + (1−λ)YU₂ᵀ + μ(XP₁ + YP₂))(λU₁U₁ᵀ + (1−λ)U₂U₂ᵀ + (2μ + γ)I)⁻¹.
Codes: sign(xP₁), sign(yP₂).
"""

from __future__ import annotations

import torch

from cmhbench.toolkit import LinearHashing
from cmhbench_methods.linalg import ridge


def cmfh_objective(x, y, v, u1, u2, p1, p2, lam, mu, gamma) -> float:
    sq = [float((m * m).sum()) for m in (x - v @ u1, y - v @ u2, v - x @ p1, v - y @ p2, u1, u2, p1, p2, v)]
    return lam * sq[0] + (1 - lam) * sq[1] + mu * (sq[2] + sq[3]) + gamma * sum(sq[4:])


def cmfh(x, y, bits, lam=0.5, mu=100.0, gamma=0.01, iterations=100, tolerance=1e-6, generator=None, log=None):
    """Returns (P₁, P₂, objective per iteration)."""
    v = torch.randn(x.shape[0], bits, generator=generator, dtype=torch.float64).to(x.device)
    # the feature-side inverses do not change across iterations
    px_solve = torch.linalg.inv(ridge(x.T @ x, gamma / mu)) @ x.T
    py_solve = torch.linalg.inv(ridge(y.T @ y, gamma / mu)) @ y.T
    history = []
    for iteration in range(int(iterations)):
        gram = v.T @ v
        u1 = torch.linalg.solve(ridge(gram, gamma / lam), v.T @ x)
        u2 = torch.linalg.solve(ridge(gram, gamma / (1 - lam)), v.T @ y)
        p1, p2 = px_solve @ v, py_solve @ v
        rhs = lam * x @ u1.T + (1 - lam) * y @ u2.T + mu * (x @ p1 + y @ p2)
        system = lam * u1 @ u1.T + (1 - lam) * u2 @ u2.T + (2 * mu + gamma) * torch.eye(bits, dtype=x.dtype, device=x.device)
        v = torch.linalg.solve(system, rhs.T).T  # system is symmetric
        history.append(cmfh_objective(x, y, v, u1, u2, p1, p2, lam, mu, gamma))
        if log:
            log(iteration, history[-1])
        if len(history) > 1 and abs(history[-2] - history[-1]) <= tolerance * abs(history[-2]):
            break
    p1, p2 = px_solve @ v, py_solve @ v
    return p1, p2, history


class CMFH(LinearHashing):
    def solve(self, x, y, labels, ctx):
        hp = self.hp
        p1, p2, _ = cmfh(x, y, self.bits, hp.lam, hp.mu, hp.gamma, hp.iterations, hp.tolerance, ctx.generator,
                         log=lambda i, value: ctx.log("solve", i, objective=value))
        return p1, p2
