"""The two-objective 2-D landscape of the CAGrad and Nash-MTL papers.

Liu et al., "Conflict-Averse Gradient Descent for Multi-task Learning"
(NeurIPS 2021, arXiv 2110.14048), and Navon et al., "Multi-Task Learning as a
Bargaining Game" (ICML 2022, arXiv 2202.01017), start optimizers from a few
points on this landscape of θ = (x₁, x₂) and watch where they end:

    f₁ = c₁(θ)·(log max(|½(-x₁-7) - tanh(-x₂)|, 5e-6) + 6) + c₂(θ)·(((-x₁+7)² + 0.1(-x₂-8)²)/10 - 20)
    f₂ = c₁(θ)·(log max(|½(-x₁+3) + tanh(-x₂) + 2|, 5e-6) + 6) + c₂(θ)·(((-x₁-7)² + 0.1(-x₂-8)²)/10 - 20)
    c₁ = max(tanh(x₂/2), 0),  c₂ = max(tanh(-x₂/2), 0)

Both losses go below zero (down to just above -20, in the lower bowls), so
methods that take logarithms or products of the losses (FAMO, GLS, uncertainty
weighting) cannot run on them as published. Liu et al.'s FAMO code (NeurIPS 2023,
arXiv 2306.03792) runs FAMO on this toy with lower bounds L* = -21, i.e. on
f_i + 21 > 0: :data:`SHIFT`. A constant shift changes neither the gradients nor
the Pareto set, so gradient methods move exactly as without it.

This module is the landscape's one home: the losses (:func:`toy_losses`), their
closed-form gradients (:func:`toy_jacobian`), the exact Pareto set
(:func:`toy_pareto_set`, a curve along the valley floor) and both papers' starting
points. :mod:`mtlkit.pareto` runs balancers on it.
What notebook 08 checks on it: from the CAGrad paper's upper starts, equal
weighting stays on the plateau, MGDA and Nash-MTL reach the lower half within
the run; from its lower start, MGDA, PCGrad and Nash-MTL stop at the first
Pareto-stationary point they reach, near one end of the set, while equal
weighting and CAGrad move along it towards the minimum of the average loss at x₁ = 0.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import torch
from scipy.optimize import brentq
from torch import Tensor

from ..tasks import TaskSet, regression

LOWER = 5e-6
#: The starting points of the Nash-MTL paper's figure.
STARTS: tuple[tuple[float, float], ...] = ((-8.5, 7.5), (0.0, 0.0), (9.0, 9.0), (-7.5, -0.5), (9.0, -1.0))
#: The CAGrad paper's starting points (its code's ``inits``).
CAGRAD_STARTS: tuple[tuple[float, float], ...] = ((-8.5, 7.5), (-8.5, -5.0), (9.0, 9.0))
#: The papers draw the toy's Pareto set as the segment x₁ ∈ [-7, 7] at x₂ = -8.3552; the exact set
#: (:func:`toy_pareto_set`) bends from x₂ = -8.355 at x₁ = 0 down to -8.434 at x₁ = ±7.
PARETO_X1 = (-7.0, 7.0)
PARETO_X2 = -8.3552
TASKS = TaskSet([regression("f1"), regression("f2")])
#: Added to both losses to make them positive (f_i > -20 everywhere): FAMO's toy code uses L* = -21.
SHIFT = 21.0


def toy_losses(theta: Tensor, shift: float = 0.0) -> Tensor:
    """(f₁ + shift, f₂ + shift) at θ; θ has shape (2,) or (N, 2) (then the result is (N, 2)).

    ``shift=SHIFT`` makes both losses positive; the default 0 is the papers' formula.
    """
    if theta.shape[-1] != 2:
        raise ValueError(f"theta must have last dimension 2 (x1, x2), got shape {tuple(theta.shape)}")
    x1, x2 = theta[..., 0], theta[..., 1]
    c1 = torch.clamp(torch.tanh(x2 * 0.5), min=0)
    c2 = torch.clamp(torch.tanh(-x2 * 0.5), min=0)
    f1_log = torch.clamp((0.5 * (-x1 - 7) - torch.tanh(-x2)).abs(), min=LOWER).log() + 6
    f2_log = torch.clamp((0.5 * (-x1 + 3) + torch.tanh(-x2) + 2).abs(), min=LOWER).log() + 6
    f1_sq = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    f2_sq = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    return torch.stack([c1 * f1_log + c2 * f1_sq, c1 * f2_log + c2 * f2_sq], dim=-1) + shift


def toy_jacobian(theta: np.ndarray, scale: float = 1.0, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """((f₁ + shift)·scale, f₂ + shift) (2,) and their gradients J (2, 2) (row i = ∇f_i) at θ (2,), closed form.

    The same function as :func:`toy_losses`, differentiated by hand:
    a NumPy step costs microseconds where an autograd step costs a millisecond.
    """
    x1, x2 = float(theta[0]), float(theta[1])
    t, th = np.tanh(x2 / 2), np.tanh(x2)
    c1, dc1 = (max(t, 0.0), 0.5 * (1 - t * t)) if t >= 0 else (0.0, 0.0)  # torch.clamp passes the gradient at 0
    c2, dc2 = (max(-t, 0.0), -0.5 * (1 - t * t)) if t <= 0 else (0.0, 0.0)
    u1, u2 = -0.5 * x1 - 3.5 + th, -0.5 * x1 + 3.5 - th
    sech2 = 1 - th * th
    a1, a2 = np.log(max(abs(u1), LOWER)) + 6, np.log(max(abs(u2), LOWER)) + 6
    da1 = np.array([-0.5, sech2]) / u1 if abs(u1) > LOWER else np.zeros(2)
    da2 = np.array([-0.5, -sech2]) / u2 if abs(u2) > LOWER else np.zeros(2)
    q1 = ((7 - x1) ** 2 + 0.1 * (x2 + 8) ** 2) / 10 - 20
    q2 = ((x1 + 7) ** 2 + 0.1 * (x2 + 8) ** 2) / 10 - 20
    dq1 = np.array([-(7 - x1) / 5, 0.02 * (x2 + 8)])
    dq2 = np.array([(x1 + 7) / 5, 0.02 * (x2 + 8)])
    dc = np.array([0.0, 1.0])
    f = np.array([scale * (c1 * a1 + c2 * q1 + shift), c1 * a2 + c2 * q2 + shift])
    J = np.stack([scale * (c1 * da1 + a1 * dc1 * dc + c2 * dq1 + q1 * dc2 * dc),
                  c1 * da2 + a2 * dc1 * dc + c2 * dq2 + q2 * dc2 * dc])
    return f, J


def toy_pareto_set(n: int = 201) -> tuple[np.ndarray, np.ndarray]:
    """θ (n, 2) along the toy's exact Pareto set, x₁ from -7 to 7, and their losses (n, 2): the Pareto front.

    Below x₂ = 0 only the quadratic parts count and ∂f₁/∂x₁ < 0 < ∂f₂/∂x₁ for
    x₁ ∈ (-7, 7), so θ is Pareto-stationary exactly where the two gradients are
    anti-parallel: det J(θ) = 0. For each x₁ we solve that for x₂ (Brent's method
    on [-9, -8]); at x₁ = ±7 the root is that task's own minimiser.
    """
    if n < 2:
        raise ValueError(f"need at least 2 points, got {n}")
    x1 = np.linspace(*PARETO_X1, n)
    x2 = [brentq(lambda b, a=a: float(np.linalg.det(toy_jacobian(np.array([a, b]))[1])), -9.0, -8.0, xtol=1e-12)
          for a in x1]
    thetas = np.stack([x1, np.array(x2)], axis=1)
    return thetas, toy_losses(torch.tensor(thetas)).numpy()


@cache
def _pareto_polyline() -> np.ndarray:
    return toy_pareto_set(401)[0]


def pareto_set_distance(thetas: np.ndarray) -> np.ndarray:
    """(N,) Euclidean distance of each θ (N, 2) to the toy's exact Pareto set (a 401-point polyline)."""
    curve = _pareto_polyline()
    thetas = np.asarray(thetas, dtype=float).reshape(-1, 2)
    a, ab = curve[:-1], np.diff(curve, axis=0)
    t = np.clip(((thetas[:, None, :] - a) * ab).sum(-1) / (ab * ab).sum(-1), 0.0, 1.0)
    return np.linalg.norm(thetas[:, None, :] - (a + t[..., None] * ab), axis=-1).min(axis=1)


def toy_grid(lo: float = -10.0, hi: float = 10.0, n: int = 101) -> tuple[Tensor, Tensor, Tensor]:
    """Coordinates (n,), (n,) and losses (n, n, 2) on a square grid, for contour plots."""
    xs = torch.linspace(lo, hi, n)
    X1, X2 = torch.meshgrid(xs, xs, indexing="xy")
    return xs, xs, toy_losses(torch.stack([X1, X2], dim=-1))
