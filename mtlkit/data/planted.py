"""Many regression tasks in known groups: data whose task relationships are planted, to check methods against.

Group g has a unit direction u_g; the directions of different groups are orthonormal.
Task t of group g(t) has its own direction, a small perturbation of its group's:

    w_t = (u_{g(t)} + δ ε_t) / ||u_{g(t)} + δ ε_t||,   ε_t ~ N(0, I_d / d)
    y_t = s_t + Σ_{i=1}^{m} [sin(α_i s_t + β_i) − μ_i] + σ ξ_t,   s_t = c · w_tᵀ x,   x ~ N(0, I_d)

(the label recipe of the MMoE paper, Ma et al. KDD 2018, with α_i, β_i ~ N(0, 1) shared
by every task). μ_i = E sin(α_i s + β_i) = sin(β_i) exp(−α_i² c² / 2) centres every
target: otherwise all tasks would share a common mean, a relation across every
group that one-run affinities (TAG, gradient cosine) pick up early in training. Tasks of one group are nearly the same function with independent
noise, so training them together helps; tasks of different groups depend on
orthogonal directions of x, so they compete for a narrow shared trunk. Every
grouping method in :mod:`mtlkit.relations` should recover the groups.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..tasks import TaskSet, regression
from .base import MultiTaskDataset


def planted_groups(n: int, group_sizes: Sequence[int] = (3, 3, 2), dim: int = 20, within: float = 0.1,
                   noise: float = 0.5, num_sines: int = 5, scale: float = 1.0, seed: int = 0
                   ) -> tuple[MultiTaskDataset, list[int]]:
    """n examples of sum(group_sizes) tasks "t1", "t2", ... and each task's true group label (0, 1, ...).

    ``within`` is δ, how far a task's direction strays from its group's; ``noise`` is σ.
    Tasks are numbered group by group: with sizes (3, 3, 2) the labels are [0, 0, 0, 1, 1, 1, 2, 2].
    """
    sizes = list(group_sizes)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not sizes or min(sizes) < 1:
        raise ValueError(f"group_sizes must be positive integers, got {tuple(group_sizes)}")
    if len(sizes) > dim:
        raise ValueError(f"{len(sizes)} groups need orthogonal directions in dim >= {len(sizes)}, got dim={dim}")
    if within < 0 or noise < 0:
        raise ValueError(f"within and noise must be >= 0, got within={within}, noise={noise}")
    g = torch.Generator().manual_seed(seed)
    labels = [group for group, size in enumerate(sizes) for _ in range(size)]
    q, _ = torch.linalg.qr(torch.randn(dim, len(sizes), generator=g))
    u = q.T[labels]  # (T, d): each task's group direction
    w = u + within * torch.randn(len(labels), dim, generator=g) / dim ** 0.5
    w = w / w.norm(dim=1, keepdim=True)
    alpha, beta = torch.randn(num_sines, generator=g), torch.randn(num_sines, generator=g)
    x = torch.randn(n, dim, generator=g)
    s = scale * x @ w.T  # (n, T)
    mean = (torch.sin(beta) * torch.exp(-(alpha * scale) ** 2 / 2)).sum()  # Σ μ_i
    y = s + torch.sin(alpha * s.unsqueeze(-1) + beta).sum(-1) - mean + noise * torch.randn(n, len(labels), generator=g)
    tasks = TaskSet(regression(f"t{t + 1}") for t in range(len(labels)))
    return MultiTaskDataset(x, {name: y[:, t:t + 1] for t, name in enumerate(tasks)}, tasks), labels


__all__ = ["planted_groups"]
