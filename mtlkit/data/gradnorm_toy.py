"""The synthetic regression of the GradNorm paper: tasks that share a map but differ in scale.

Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient Normalization for
Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018, arXiv 1711.02257, §4.
Task i regresses

    f_i(x) = σ_i tanh((B + ε_i) x),    x ∈ R^250,  f_i(x) ∈ R^100

with B and ε_i constant matrices whose entries are drawn i.i.d. from N(0, 10) and
N(0, 3.5) (as in public re-implementations, 10 and 3.5 are standard deviations).
B is shared by every task, ε_i is task i's own; the scales σ_i differ by orders of
magnitude (the paper's two-task case: σ = 1 and 100), so under equal weighting the
loss, and the gradient, of the large-σ task dwarfs the others.

The paper does not say how x is drawn. Like public re-implementations we draw
x ~ U(-1, 1)^d and rescale it to unit norm. Optional Gaussian label noise of
standard deviation ``noise[i]`` (in target units) turns the toy into the setting
of uncertainty weighting: tasks with different noise levels.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..tasks import TaskSet, regression
from .base import MultiTaskDataset

#: The scales of the paper's two-task example.
PAPER_SIGMAS = (1.0, 100.0)


def _per_task(value: float | Sequence[float], num_tasks: int, what: str) -> torch.Tensor:
    values = torch.as_tensor([float(value)] * num_tasks if isinstance(value, (int, float)) else
                             [float(v) for v in value])
    if values.shape != (num_tasks,):
        raise ValueError(f"{what} must be one number or one per task ({num_tasks}), got {list(values.tolist())}")
    return values


def gradnorm_toy(n: int, sigmas: Sequence[float] = PAPER_SIGMAS, in_dim: int = 250, out_dim: int = 100,
                 b_std: float = 10.0, eps_std: float = 3.5, noise: float | Sequence[float] = 0.0,
                 seed: int = 0) -> MultiTaskDataset:
    """n examples of T = len(sigmas) regression tasks "t1".."tT", targets (n, out_dim) each (seeded).

    ``sigmas`` (T,) are the output scales σ_i, ``noise`` the label-noise standard
    deviation (one number, or one per task). x has shape (n, in_dim), unit-norm rows.
    """
    if n < 1 or in_dim < 1 or out_dim < 1:
        raise ValueError(f"n, in_dim and out_dim must be >= 1, got n={n}, in_dim={in_dim}, out_dim={out_dim}")
    T = len(sigmas)
    if T < 1:
        raise ValueError("need at least one task scale in sigmas")
    scale = _per_task(list(sigmas), T, "sigmas")
    noise_std = _per_task(noise, T, "noise")
    if not bool((scale > 0).all()) or not bool(torch.isfinite(scale).all()):
        raise ValueError(f"every σ_i must be positive and finite, got {scale.tolist()}")
    if bool((noise_std < 0).any()) or b_std < 0 or eps_std < 0:
        raise ValueError(f"standard deviations must be >= 0, got noise={noise_std.tolist()}, "
                         f"b_std={b_std}, eps_std={eps_std}")
    g = torch.Generator().manual_seed(seed)
    B = b_std * torch.randn(out_dim, in_dim, generator=g)
    x = 2 * torch.rand(n, in_dim, generator=g) - 1
    x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    # one draw per task, in order: adding a task leaves x, B and the earlier tasks' functions unchanged
    eps = [eps_std * torch.randn(out_dim, in_dim, generator=g) for _ in range(T)]
    tasks = TaskSet(regression(f"t{i + 1}", out_dim) for i in range(T))
    clean = [scale[i] * torch.tanh(x @ (B + eps[i]).T) for i in range(T)]
    targets = {name: clean[i] + noise_std[i] * torch.randn(n, out_dim, generator=g) for i, name in enumerate(tasks)}
    return MultiTaskDataset(x, targets, tasks)


__all__ = ["PAPER_SIGMAS", "gradnorm_toy"]
