"""Nash-MTL: the Nash bargaining solution between tasks.

Find α > 0 with

    K α = 1/α      (elementwise; K = G Gᵀ),      d = Σ_i α_i g_i

so that every task's share α_i (g_i·d) = 1 is equal: no task can gain without
another losing (the bargaining solution of the tasks' utilities g_i·d).

Solver: the equation is the stationarity condition of the strictly convex
φ(α) = ½ αᵀ K α − Σ_i log α_i (gradient K α − 1/α, Hessian K + diag(1/α²)), so
we run damped Newton on φ (backtracking, steps kept inside α > 0), in float64 on
K / ||K||_F, until the squared Newton decrement −∇φ·Δα is below 1e-14 (Newton
converges quadratically, so the next step would be below float64's resolution) or
the line search can no longer decrease φ, at most 100 iterations; then α is
rescaled back. Unlike the paper's sequence of CVXPY convex programs
(a concave-convex procedure with a fixed iteration budget) this solves the
equation itself, up to one approximation: a ridge 1e-8·I is added to K/||K||_F so a
solution exists when K is singular (a zero gradient, or gradients that sum to 0
with positive weights); then K α = 1/α holds up to that ridge and d ≈ 0 at a
Pareto-stationary point. As in the official code, the update is scaled down to
norm ``max_norm`` when longer (None disables it).

Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya, "Multi-Task
Learning as a Bargaining Game", ICML 2022, arXiv 2202.01017.
"""
from __future__ import annotations

import numpy as np
from torch import Tensor

from ._simplex import as_weights, gram
from .base import GradientBalancer


def nash_weights(K: np.ndarray, ridge: float = 1e-8, max_iter: int = 100) -> np.ndarray:
    """α > 0 solving K α = 1/α (up to the ridge), by damped Newton on ½αᵀKα − Σ log α."""
    T = K.shape[0]
    scale = float(np.linalg.norm(K))
    if scale <= 0:
        return np.ones(T)
    A = K / scale + ridge * np.eye(T)

    def phi(a: np.ndarray) -> float:
        return 0.5 * a @ A @ a - np.log(a).sum()

    a = 1.0 / np.sqrt(np.diag(A))
    for _ in range(max_iter):
        grad = A @ a - 1.0 / a
        step = -np.linalg.solve(A + np.diag(1.0 / a ** 2), grad)
        decrement = -grad @ step
        if decrement < 1e-14:
            break
        t = 1.0
        neg = step < 0
        if neg.any():
            t = min(1.0, 0.99 * float(np.min(-a[neg] / step[neg])))
        f0 = phi(a)
        while t > 1e-12 and phi(a + t * step) > f0 - 0.25 * t * decrement:
            t *= 0.5
        if t <= 1e-12:  # φ cannot decrease any more in float64: a is as good as it gets
            break
        a = a + t * step
    return a / np.sqrt(scale)


class NashMTL(GradientBalancer):
    """Bargaining weights α solving Kα = 1/α (Newton), d = Σ α_i g_i, clipped to ``max_norm``."""

    name = "nash_mtl"
    permutation_equivariant = True

    def __init__(self, on: str = "params", max_norm: float | None = 1.0):
        super().__init__(on)
        if max_norm is not None and not max_norm > 0:
            raise ValueError(f"max_norm must be positive or None, got {max_norm}")
        self.max_norm = max_norm

    def aggregate(self, G: Tensor) -> Tensor:
        alpha = as_weights(nash_weights(gram(G)), G)
        d = alpha @ G
        if self.max_norm is not None:
            norm = float(d.norm())
            if norm > self.max_norm:
                alpha = alpha * (self.max_norm / norm)
                d = d * (self.max_norm / norm)
        self.last_weights = alpha
        return d
