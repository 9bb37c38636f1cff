"""Nash-MTL: the Nash bargaining solution between tasks.

Find α > 0 with

    K α = 1/α      (elementwise; K = G Gᵀ),      d = Σ_i α_i g_i

so that every task's share α_i (g_i·d) = 1 is equal: no task can gain without
another losing (the bargaining solution of the tasks' utilities g_i·d). The
solution is scale-invariant: multiplying loss i by s divides α_i by s and leaves
d unchanged.

Solver: write α_i = β_i / ||g_i||; then the condition is C β = 1/β with C the
cosine matrix of the unit gradients u_i (diagonal 1, whatever the gradients'
scales). That is the stationarity condition of the strictly convex
φ(β) = ½ βᵀ C β − Σ_i log β_i (gradient C β − 1/β, Hessian C + diag(1/β²)), so we
run damped Newton on φ in float64 (φ is self-concordant, so the step 1/(1+λ),
λ the Newton decrement, stays inside β > 0 and always decreases φ; full steps once
λ < ¼) until λ² is below 1e-20 (quadratic convergence: the condition then holds
to round-off) or φ can no longer decrease. φ is bounded
below, and the solution exists, exactly when 0 is not in the convex hull of the
u_i (a common descent direction exists). Unlike the paper's sequence of CVXPY
convex programs (a concave-convex procedure with a fixed iteration budget) this
solves the equation itself, with no ridge. As in the official code, the update
is scaled down to norm ``max_norm`` when longer (None disables it).

Degenerate cases: a zero gradient has utility 0 for every d, so it cannot take
part in the bargain: it gets α_i = 0 and the others bargain. When 0 is in the
hull of the unit gradients (within 1e-7: opposite gradients, or T > P around a
Pareto-stationary point) there is no bargaining solution and d = 0. T = 1:
α = 1/||g_1||, d = g_1 / ||g_1|| (before clipping).

Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya, "Multi-Task
Learning as a Bargaining Game", ICML 2022, arXiv 2202.01017.
"""
from __future__ import annotations

import numpy as np

from .base import GradientBalancer
from .solvers import min_norm_point, unit_gram

#: ||min-norm point of the unit gradients' hull|| at or below which 0 counts as in the hull (no bargain)
STATIONARY_TOL = 1e-7


def bargaining_solution(C: np.ndarray, max_iter: int = 500) -> np.ndarray:
    """β > 0 solving C β = 1/β, by damped Newton on φ(β) = ½βᵀCβ − Σ log β (C: cosine matrix)."""
    k = C.shape[0]

    def phi(b: np.ndarray) -> float:
        return 0.5 * b @ C @ b - np.log(b).sum()

    b = np.full(k, np.sqrt(k / max(float(C.sum()), 1e-300)))   # the best multiple of 1
    for _ in range(max_iter):
        grad = C @ b - 1.0 / b
        step = -np.linalg.solve(C + np.diag(1.0 / b ** 2), grad)
        decrement = -grad @ step
        if decrement < 1e-20:
            break
        # φ is self-concordant (a quadratic plus a log barrier): the damped step 1/(1+λ) stays inside
        # β > 0 and decreases φ by at least λ − log(1+λ) (Nesterov); full steps once λ < ¼ (quadratic phase)
        lam = np.sqrt(decrement)
        t = 1.0 if lam < 0.25 else 1.0 / (1.0 + lam)
        moved = b + t * step
        if not (moved > 0).all() or phi(moved) >= phi(b):  # round-off at the optimum: b is as good as it gets
            break
        b = moved
    return b


def nash_weights(K: np.ndarray) -> np.ndarray:
    """α ≥ 0 (T,) solving α_i (K α)_i = 1 on the non-zero gradients; 0 where there is no bargain."""
    C, norms, nonzero = unit_gram(K)
    alpha = np.zeros(K.shape[0])
    if not nonzero.any():
        return alpha
    a = min_norm_point(C)
    if np.sqrt(max(a @ C @ a, 0.0)) <= STATIONARY_TOL:
        return alpha
    alpha[nonzero] = bargaining_solution(C) / norms[nonzero]
    return alpha


class NashMTL(GradientBalancer):
    """Bargaining weights α solving Kα = 1/α (Newton), d = Σ α_i g_i, clipped to ``max_norm``."""

    name = "nash_mtl"
    permutation_equivariant = True

    def __init__(self, on: str = "params", max_norm: float | None = 1.0):
        super().__init__(on)
        if max_norm is not None and not max_norm > 0:
            raise ValueError(f"max_norm must be positive or None, got {max_norm}")
        self.max_norm = max_norm

    def gram_weights(self, K: np.ndarray) -> np.ndarray:
        alpha = nash_weights(K)
        norm = float(np.sqrt(max(alpha @ K @ alpha, 0.0)))   # ||d||, from K
        if self.max_norm is not None and norm > self.max_norm:
            alpha = alpha * (self.max_norm / norm)
        return alpha
