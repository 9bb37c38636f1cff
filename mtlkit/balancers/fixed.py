"""Equal and fixed loss weighting: L = Σ_i w_i L_i with constant weights.

Equal weighting (w_i = 1, "unitary scalarization") is the baseline every other
method must beat. Kurin et al. (NeurIPS 2022, arXiv 2201.04122) find that equal
weighting with standard regularisation and tuning matches the specialised
optimisers; Xin et al. (NeurIPS 2022, arXiv 2209.11379) find that *tuned* fixed
weights (a linear scalarization sweep) do. Notebook 06 tests where that holds.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .base import WeightingBalancer


class EqualWeighting(WeightingBalancer):
    """w_i = 1 for every task."""

    name = "equal"

    def weights(self, losses: Tensor) -> Tensor:
        return torch.ones_like(losses)


class FixedWeighting(WeightingBalancer):
    """w_i given by hand (the manual sliders of the live panel)."""

    name = "fixed"

    def __init__(self, weights: Sequence[float]):
        super().__init__()
        w = torch.as_tensor(list(weights), dtype=torch.float32)
        if w.dim() != 1 or not torch.isfinite(w).all() or (w < 0).any():
            raise ValueError(f"fixed weights must be a list of finite, non-negative numbers, got {list(weights)}")
        self.register_buffer("fixed", w)

    def setup(self, num_tasks: int, task_names: Sequence[str] | None = None) -> None:
        super().setup(num_tasks, task_names)
        if self.fixed.numel() != num_tasks:
            raise ValueError(f"FixedWeighting has {self.fixed.numel()} weights but the model has {num_tasks} tasks")

    def set_weights(self, weights: Sequence[float]) -> None:
        """Change the weights in place (e.g. from a slider) between steps."""
        w = torch.as_tensor(list(weights), dtype=self.fixed.dtype, device=self.fixed.device)
        if w.shape != self.fixed.shape or (w < 0).any() or not torch.isfinite(w).all():
            raise ValueError(f"need {self.fixed.numel()} finite, non-negative weights, got {list(weights)}")
        self.fixed.copy_(w)

    def weights(self, losses: Tensor) -> Tensor:
        if losses.shape != self.fixed.shape:
            raise ValueError(f"got {losses.numel()} losses for {self.fixed.numel()} fixed weights")
        return self.fixed.to(losses.device, losses.dtype)
