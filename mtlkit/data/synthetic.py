"""Synthetic regression tasks with a controllable task correlation ρ.

The recipe of the MMoE paper (Ma et al., "Modeling Task Relationships in
Multi-task Learning with Multi-gate Mixture-of-Experts", KDD 2018, §3.2):

1. pick orthonormal u_1, ..., u_T in R^d;
2. w_1 = c u_1 and w_t = c (ρ u_1 + sqrt(1 - ρ²) u_t) for t ≥ 2, so cos(w_1, w_t) = ρ;
3. draw x ~ N(0, I_d);
4. y_t = w_tᵀx + Σ_{i=1}^{m} sin(α_i w_tᵀx + β_i) + ε,  ε ~ N(0, σ²),
   with α_i, β_i ~ N(0, 1) shared by every task.

The labels' Pearson correlation rises with ρ, which is the point: at high ρ the
tasks help each other, at low ρ they compete for a shared representation.
"""
from __future__ import annotations

import torch

from ..tasks import TaskSet, regression
from .base import MultiTaskDataset


def task_weights(rho: float, dim: int, num_tasks: int = 2, scale: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """W (T, d): rows w_t with cos(w_1, w_t) = ρ, built from random orthonormal vectors."""
    if not -1.0 <= rho <= 1.0:
        raise ValueError(f"task correlation rho must lie in [-1, 1], got {rho}")
    if not 2 <= num_tasks <= dim:
        raise ValueError(f"need 2 <= num_tasks <= dim, got num_tasks={num_tasks}, dim={dim}")
    q, _ = torch.linalg.qr(torch.randn(dim, num_tasks, generator=generator))
    u = q.T  # (T, d) orthonormal rows
    w = [u[0]] + [rho * u[0] + (1 - rho ** 2) ** 0.5 * u[t] for t in range(1, num_tasks)]
    return scale * torch.stack(w)


def correlated_regression(n: int, rho: float, dim: int = 100, num_tasks: int = 2, num_sines: int = 10,
                          noise: float = 0.1, scale: float = 1.0, seed: int = 0) -> MultiTaskDataset:
    """n examples of T regression tasks "t1".."tT" with weight correlation ``rho`` (seeded)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    g = torch.Generator().manual_seed(seed)
    W = task_weights(rho, dim, num_tasks, scale, g)
    alpha = torch.randn(num_sines, generator=g)
    beta = torch.randn(num_sines, generator=g)
    x = torch.randn(n, dim, generator=g)
    s = x @ W.T  # (n, T)
    y = s + torch.sin(alpha * s.unsqueeze(-1) + beta).sum(-1) + noise * torch.randn(n, num_tasks, generator=g)
    tasks = TaskSet(regression(f"t{t + 1}") for t in range(num_tasks))
    return MultiTaskDataset(x, {name: y[:, t:t + 1] for t, name in enumerate(tasks)}, tasks)
