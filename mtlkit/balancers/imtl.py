"""IMTL-G: the update whose projection on every task's unit gradient is equal.

Find d = Σ_i α_i g_i with Σ_i α_i = 1 and d·u_1 = d·u_i for all i, u_i = g_i/||g_i||.
Closed form with D the (T−1) × P matrix of rows g_1 − g_i and U of rows u_1 − u_i
(i = 2..T):

    α_{2..T} = g_1 Uᵀ (D Uᵀ)^{-1},    α_1 = 1 − Σ_{i≥2} α_i

Computed from the Gram matrix (g_1 Uᵀ and D Uᵀ are combinations of its entries);
a singular D Uᵀ (duplicated or zero gradients) is solved by least squares, and a
zero gradient has u_i = 0.

Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, "Towards Impartial Multi-task
Learning", ICLR 2021.
"""
from __future__ import annotations

import numpy as np
from torch import Tensor

from ._simplex import as_weights, gram
from .base import GradientBalancer


def imtl_weights(K: np.ndarray) -> np.ndarray:
    """α (T,) of IMTL-G from the Gram matrix K (T, T)."""
    T = K.shape[0]
    if T == 1:
        return np.ones(1)
    scale = float(np.trace(K)) / T
    if scale <= 0:
        return np.full(T, 1.0 / T)
    K = K / scale
    norms = np.sqrt(np.clip(np.diag(K), 0, None))
    inv = np.where(norms > 1e-12, 1.0 / np.maximum(norms, 1e-12), 0.0)
    # E maps coefficients to rows: D = E_D G, U = E_U G with E (T-1, T)
    E_D = np.zeros((T - 1, T))
    E_D[:, 0] = 1.0
    E_D[np.arange(T - 1), np.arange(1, T)] = -1.0
    E_U = E_D * inv[None, :]
    gU = K[0] @ E_U.T                 # g_1 Uᵀ  (T-1,)
    DU = E_D @ K @ E_U.T              # D Uᵀ    (T-1, T-1)
    rest = np.linalg.lstsq(DU.T, gU, rcond=None)[0]
    return np.concatenate([[1.0 - rest.sum()], rest])


class IMTLG(GradientBalancer):
    """Impartial MTL, gradient part: equal projections on the unit task gradients."""

    name = "imtl_g"
    permutation_equivariant = True

    def aggregate(self, G: Tensor) -> Tensor:
        alpha = as_weights(imtl_weights(gram(G)), G)
        self.last_weights = alpha
        return alpha @ G
