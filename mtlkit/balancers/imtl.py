"""IMTL-G: the update whose projection on every task's unit gradient is equal.

Find d = Σ_i α_i g_i with Σ_i α_i = 1 and d·u_1 = d·u_i for all i, u_i = g_i/||g_i||.
The paper's closed form, with D the (T−1) × P matrix of rows g_1 − g_i and U of
rows u_1 − u_i (i = 2..T):

    α_{2..T} = g_1 Uᵀ (D Uᵀ)^{-1},    α_1 = 1 − Σ_{i≥2} α_i

Here the same conditions are solved scale-free: with β_i = α_i ||g_i||, d = Σ β_i u_i
and the conditions read C β = c 1 (C the cosine matrix of the unit gradients, c
the common projection) and Σ_i β_i / ||g_i|| = 1: one (T+1) × (T+1) linear system
in (β, c), solved by least squares, so its accuracy does not depend on the
gradients' scales.

Degenerate cases: a zero gradient has no direction to be impartial to: it gets
α_i = 0 and the others share the update (the paper's u_i is undefined there;
taking u_i = 0 would force d·u_j = 0 for all j, d = 0, and stop every task).
Duplicated gradients: C is singular, the least-squares solution splits their
weight. Opposite gradients: equal projections force c = 0, so d = 0 (no update
serves both). T = 1: d = g_1.

Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, "Towards Impartial Multi-task
Learning", ICLR 2021.
"""
from __future__ import annotations

import numpy as np

from .base import GradientBalancer
from .solvers import unit_gram


def imtl_weights(K: np.ndarray) -> np.ndarray:
    """α (T,) of IMTL-G from the Gram matrix K (T, T); 0 on zero gradients."""
    C, norms, nonzero = unit_gram(K)
    alpha = np.zeros(K.shape[0])
    k = C.shape[0]
    if k == 0:
        return alpha
    inv = 1.0 / norms[nonzero]
    M = np.zeros((k + 1, k + 1))
    M[:k, :k] = C
    M[:k, k] = -1.0                       # C β − c 1 = 0
    M[k, :k] = inv / inv.max()            # Σ β_i / ||g_i|| = 1, row scaled to max 1
    rhs = np.zeros(k + 1)
    rhs[k] = 1.0 / inv.max()
    beta = np.linalg.lstsq(M, rhs, rcond=None)[0][:k]
    alpha[nonzero] = beta * inv
    return alpha


class IMTLG(GradientBalancer):
    """Impartial MTL, gradient part: equal projections on the unit task gradients."""

    name = "imtl_g"
    permutation_equivariant = True
    gram_weights = staticmethod(imtl_weights)
