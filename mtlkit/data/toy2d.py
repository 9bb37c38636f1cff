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

The Pareto set is a curve along the valley floor (:func:`mtlkit.pareto.toy_pareto_set`).
What notebook 08 checks on it: from the CAGrad paper's upper starts, equal
weighting stays on the plateau, MGDA and Nash-MTL reach the lower half within
the run; from its lower start, MGDA, PCGrad and Nash-MTL stop at the first
Pareto-stationary point they reach, near one end of the set, while equal
weighting and CAGrad move along it towards the minimum of the average loss at x₁ = 0.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..tasks import TaskSet, regression

LOWER = 5e-6
#: The starting points of the Nash-MTL paper's figure (the CAGrad paper's are ``pareto.CAGRAD_STARTS``).
STARTS: tuple[tuple[float, float], ...] = ((-8.5, 7.5), (0.0, 0.0), (9.0, 9.0), (-7.5, -0.5), (9.0, -1.0))
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


def toy_grid(lo: float = -10.0, hi: float = 10.0, n: int = 101) -> tuple[Tensor, Tensor, Tensor]:
    """Coordinates (n,), (n,) and losses (n, n, 2) on a square grid, for contour plots."""
    xs = torch.linspace(lo, hi, n)
    X1, X2 = torch.meshgrid(xs, xs, indexing="xy")
    return xs, xs, toy_losses(torch.stack([X1, X2], dim=-1))
