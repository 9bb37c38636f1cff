"""UPGrad: average the projections of every task gradient onto the dual cone.

The dual cone of the rows of G is C = {x : G x ≥ 0} (updates that conflict with
no task). UPGrad projects each g_i onto C and averages:

    d = (1/T) Σ_i Π_C(g_i),       so  g_j · d ≥ 0 for every j

Π_C(g_i) = Gᵀ v_i with v_i = e_i + μ_i, μ_i = argmin_{μ ≥ 0} ||Gᵀ(e_i + μ)||²
(the dual of the projection). With K = G Gᵀ = A Aᵀ (A = V Λ^{1/2}), that is the
non-negative least-squares problem min_{μ≥0} ||Aᵀμ + Aᵀe_i||², solved exactly
by SciPy's active-set NNLS on a T × T system; d = w G with w = mean_i v_i.

Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization",
arXiv 2406.16232 (2024); the reference implementation is the torchjd library
(not a dependency here).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import nnls
from torch import Tensor

from ._simplex import as_weights, gram
from .base import GradientBalancer


def dual_cone_weights(K: np.ndarray) -> np.ndarray:
    """V (T, T): row i holds v_i with Π_C(g_i) = Σ_j V_ij g_j, from the Gram matrix K."""
    T = K.shape[0]
    scale = float(np.trace(K)) / T
    if scale <= 0:
        return np.eye(T)
    lam, vecs = np.linalg.eigh(K / scale)
    At = (vecs * np.sqrt(np.clip(lam, 0, None))).T   # Aᵀ (T, T): ||Aᵀ v||² = vᵀ K v
    V = np.eye(T)
    for i in range(T):
        mu, _ = nnls(At, -At[:, i])
        V[i] += mu
    return V


class UPGrad(GradientBalancer):
    """Unconflicting projection of gradients, averaged over the tasks."""

    name = "upgrad"
    permutation_equivariant = True

    def aggregate(self, G: Tensor) -> Tensor:
        w = as_weights(dual_cone_weights(gram(G)).mean(axis=0), G)
        self.last_weights = w
        return w @ G
