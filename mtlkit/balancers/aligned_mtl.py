"""Aligned-MTL: make the task gradients an orthogonal system of equal strength.

With the eigendecomposition of the Gram matrix K = G Gᵀ = V Λ Vᵀ (keeping the
r eigenvalues above a relative tolerance, λ_1 ≥ … ≥ λ_r > 0):

    B = √λ_r · V Λ^{-1/2} Vᵀ,     α = B 1,     d = Σ_i α_i g_i

The rows of B G are the aligned gradients: (B G)(B G)ᵀ = λ_r V Vᵀ, i.e. an
orthogonal system whose singular values all equal the smallest one of G, √λ_r
(condition number 1: no dominating and no conflicting direction); d is their
sum (task weights 1).

The rank rule is the paper code's: eigenvalues λ ≤ T·eps·λ_1 count as 0, with eps
the machine epsilon of G's dtype (a float32 G carries no information below it).
K is formed in float64 whatever G's dtype. Degenerate cases: a zero gradient
lies in K's null space, so it gets weight 0; duplicated or rank-deficient G keeps
only its r non-zero directions; T > P likewise (r ≤ P). T = 1: d = g_1. G = 0: d = 0.

Senushkin, Patakin, Kuznetsov & Konushin, "Independent Component Alignment for
Multi-Task Learning", CVPR 2023, arXiv 2305.19000.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .base import GradientBalancer
from .solvers import as_weights


def aligned_matrix(K: np.ndarray, rel_tol: float) -> np.ndarray:
    """B (T, T) = √λ_r V Λ^{-1/2} Vᵀ from the Gram matrix; eigenvalues ≤ rel_tol·T·λ_max count as 0."""
    T = K.shape[0]
    lam, V = np.linalg.eigh(K)
    lam, V = lam[::-1], V[:, ::-1]
    if not lam[0] > 0:
        return np.zeros((T, T))
    keep = lam > lam[0] * T * rel_tol
    lam, V = lam[keep], V[:, keep]
    return np.sqrt(lam[-1]) * (V / np.sqrt(lam)) @ V.T


def aligned_weights(K: np.ndarray, rel_tol: float) -> np.ndarray:
    """α = B 1 (T,): the weights of d = Σ α_i g_i."""
    return aligned_matrix(K, rel_tol).sum(axis=0)


class AlignedMTL(GradientBalancer):
    """Gradients aligned to a well-conditioned system, scaled by the smallest singular value."""

    name = "aligned_mtl"
    permutation_equivariant = True

    def combine(self, G: Tensor, K: np.ndarray) -> Tensor:
        alpha = as_weights(aligned_weights(K, float(torch.finfo(G.dtype).eps)), G)
        self.last_weights = alpha
        return alpha @ G
