"""Geometric loss strategy (GLS): minimise the geometric mean of the task losses.

    L = (Π_i L_i)^{1/T} = exp((1/T) Σ_i log L_i)

Its gradient is Σ_i w_i ∇L_i with w_i = L / (T L_i): a task with a small loss
gets a large weight, so every task's *relative* progress counts equally. The
weights reported are these w_i.

Chennupati, Sistu, Yogamani & Rawashdeh, "MultiNet++: Multi-Stream Feature
Aggregation and Geometric Loss Strategy for Multi-Task Learning", CVPR
Workshops 2019, arXiv 1904.08492.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .base import WeightingBalancer


class GeometricLoss(WeightingBalancer):
    """L = (Π L_i)^{1/T}; losses are clamped at ``eps`` so a zero loss stays finite."""

    name = "gls"

    def __init__(self, eps: float = 1e-12):
        super().__init__()
        self.eps = eps

    def objective(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        self.check_finite(losses, "loss")
        safe = losses.clamp_min(self.eps)
        total = torch.exp(torch.log(safe).mean())
        w = total.detach() / (losses.shape[0] * safe.detach())
        return total, w
