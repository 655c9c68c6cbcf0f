"""SCM: Semantic Correlation Maximization (Zhang & Li, AAAI 2014), sequential and orthogonal.

Labels define S = 2 L̃L̃ᵀ − 11ᵀ (L̃: rows of the label matrix scaled to unit length), never formed:
on centred features XᵀSY = 2(XᵀL̃)(L̃ᵀY). The relaxed objective max tr(W_xᵀ XᵀSY W_y):

* **SCM-orth**: with W_xᵀC_xxW_x = W_yᵀC_yyW_y = I, the top-K solutions of
  C C_yy⁻¹ Cᵀ w_x = λ² C_xx w_x (C = XᵀSY), w_y = C_yy⁻¹ Cᵀ w_x / λ;
* **SCM-seq**: bit by bit, against the residual S_t = K·S − Σ_{τ<t} sign(Xw_x^τ) sign(Yw_y^τ)ᵀ,
  i.e. C_t = K·XᵀSY − Σ_{τ<t} (Xᵀb_x^τ)(b_y^τᵀY), taking the top solution of the same problem.

``regularisation`` ε (relative to each covariance's mean diagonal) keeps C_xx, C_yy invertible.
Constant bits beyond SCM-orth's rank and SCM-seq's ``stop`` rule (the authors' code's, by
default): docs/methods/shallow.md.
"""

from __future__ import annotations

import torch

from cmhbench.toolkit import LinearHashing
from cmhbench_methods.linalg import cholesky_factors, covariance, leading_pairs, regularised


def semantic_cross_covariance(x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Xᵀ S Y for S = 2 L̃L̃ᵀ − 11ᵀ, in O(n·d·c) without the n×n matrix."""
    unit = labels / labels.norm(dim=1, keepdim=True).clamp(min=1e-12)
    return 2.0 * (x.T @ unit) @ (unit.T @ y) - torch.outer(x.sum(0), y.sum(0))


def _cholesky_factors(x, y, relative_reg):
    return cholesky_factors(regularised(covariance(x), relative_reg), regularised(covariance(y), relative_reg))


def scm_orth(x, y, labels, bits, relative_reg=1e-4):
    chol_x, chol_y = _cholesky_factors(x, y, relative_reg)
    wx, wy, _ = leading_pairs(semantic_cross_covariance(x, y, labels), chol_x, chol_y, bits)
    return wx, wy


def scm_seq(x, y, labels, bits, relative_reg=1e-4, stop="cca"):
    """(W_x, W_y, learnt): ``learnt`` bits came from the residual, the rest (``stop="cca"`` only)
    are the leading CCA pairs."""
    if stop not in ("none", "cca"):
        raise ValueError(f"stop={stop!r}: expected 'none' or 'cca'")
    chol_x, chol_y = _cholesky_factors(x, y, relative_reg)  # the same for every bit
    residual = bits * semantic_cross_covariance(x, y, labels)
    columns_x, columns_y = [], []
    previous = float("inf")
    for _ in range(bits):
        wx, wy, value = leading_pairs(residual, chol_x, chol_y, 1)
        if stop == "cca" and float(value[0]) > previous:
            break  # this bit would not shrink the residual further
        previous = float(value[0])
        bx, by = torch.sign(x @ wx), torch.sign(y @ wy)
        residual = residual - (x.T @ bx) @ (by.T @ y)
        columns_x.append(wx)
        columns_y.append(wy)
    learnt = len(columns_x)
    if learnt < bits:
        cca_x, cca_y, _ = leading_pairs(covariance(x, y), chol_x, chol_y, bits - learnt)
        columns_x.append(cca_x)
        columns_y.append(cca_y)
    return torch.cat(columns_x, 1), torch.cat(columns_y, 1), learnt


class SCMOrth(LinearHashing):
    def solve(self, x, y, labels, ctx):
        return scm_orth(x, y, labels, self.bits, self.hp.regularisation)


class SCMSeq(LinearHashing):
    def solve(self, x, y, labels, ctx):
        wx, wy, learnt = scm_seq(x, y, labels, self.bits, self.hp.regularisation, self.hp.stop)
        ctx.log("solve", 0, residual_bits=learnt, cca_bits=self.bits - learnt)
        return wx, wy
