"""CAGrad: the best worst-case improvement within a ball around the mean gradient.

    max_d min_i g_i·d   s.t.  ||d − g_0|| ≤ c ||g_0||,      g_0 = (1/T) Σ_i g_i

Its dual, over the simplex: w* = argmin_{w ∈ Δ} g_wᵀ g_0 + c ||g_0|| ||g_w||,
g_w = Σ_i w_i g_i, gives d = g_0 + (c ||g_0|| / ||g_w*||) g_w*, here divided by
1 + c² (the official code's default rescaling). c = 0 is the mean gradient
(equal weighting / T); c → 1 approaches MGDA-like behaviour.

The dual is solved on the Gram matrix with SciPy's SLSQP (as the official code
does), with the analytic gradient.

Liu, Liu, Jin, Stone & Liu, "Conflict-Averse Gradient Descent for Multi-task
Learning", NeurIPS 2021, arXiv 2110.14048.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from torch import Tensor

from ._simplex import as_weights, gram
from .base import GradientBalancer


class CAGrad(GradientBalancer):
    """Conflict-averse gradient with ball radius ``c`` (relative to ||g_0||)."""

    name = "cagrad"
    permutation_equivariant = True

    def __init__(self, on: str = "params", c: float = 0.4, rescale: bool = True):
        super().__init__(on)
        if not 0.0 <= c < 1.0:
            raise ValueError(f"c must lie in [0, 1), got {c}")
        self.c, self.rescale = c, rescale

    def weights(self, K: np.ndarray) -> np.ndarray:
        """α (T,) with d = Σ α_i g_i, from the Gram matrix K."""
        T = K.shape[0]
        mean = np.full(T, 1.0 / T)
        scale = float(np.trace(K)) / T
        if self.c == 0 or scale <= 0:
            return mean
        A = K / scale
        radius = self.c * np.sqrt(max(mean @ A @ mean, 0.0))
        Ab = A @ mean
        w = self._solve_dual(A, Ab, radius)
        gw_norm = np.sqrt(max(w @ A @ w, 0.0))
        alpha = mean + (radius / gw_norm) * w if gw_norm > 1e-12 else mean
        return alpha / (1 + self.c ** 2) if self.rescale else alpha

    @staticmethod
    def _solve_dual(A: np.ndarray, Ab: np.ndarray, radius: float) -> np.ndarray:
        T = A.shape[0]

        def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
            Aw = A @ w
            norm = np.sqrt(max(w @ Aw, 0.0) + 1e-12)
            return float(w @ Ab + radius * norm), Ab + radius * Aw / norm

        res = minimize(fun, np.full(T, 1.0 / T), jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * T,
                       constraints=({"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones(T)},),
                       options={"ftol": 1e-12, "maxiter": 200})
        w = np.clip(res.x, 0.0, None)
        return w / w.sum() if w.sum() > 0 else np.full(T, 1.0 / T)

    def aggregate(self, G: Tensor) -> Tensor:
        alpha = as_weights(self.weights(gram(G)), G)
        self.last_weights = alpha
        return alpha @ G
