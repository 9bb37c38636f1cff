"""Random loss weighting (RLW): fresh random weights every step.

    w = softmax(ε),  ε ~ N(0, I_T),   L = Σ_i w_i L_i

The weights sum to 1, as in the paper (equal weighting's sum is T, so RLW's
step is T times smaller at the same learning rate; Adam hardly notices).
Random weights draw from torch's global generator, which the Trainer seeds.

Lin, Ye, Zhang & Tsang, "Reasonable Effectiveness of Random Weighting:
A Litmus Test for Multi-Task Learning", TMLR 2022, arXiv 2111.10603.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .base import WeightingBalancer


class RandomLossWeighting(WeightingBalancer):
    """w = softmax(ε) with ε ~ N(0, I) drawn every step."""

    name = "rlw"

    def weights(self, losses: Tensor) -> Tensor:
        eps = torch.randn(losses.shape, device=losses.device, dtype=losses.dtype)
        return torch.softmax(eps, dim=0)
