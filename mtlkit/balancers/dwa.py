"""Dynamic weight average (DWA): weight each task by how slowly its loss falls.

    w_i(t) = T exp(r_i(t-1)/τ) / Σ_j exp(r_j(t-1)/τ),   r_i(t-1) = L_i(t-1) / L_i(t-2)

with L_i(t) the epoch-mean training loss of epoch t and temperature τ (2 in the
paper). w_i = 1 until two epochs have ended. The weights sum to T.

Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention",
CVPR 2019, arXiv 1803.10704 (§3.4).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor

from .base import WeightingBalancer


class DynamicWeightAverage(WeightingBalancer):
    """Weights from the ratio of the last two epoch losses; updated in :meth:`end_epoch`."""

    name = "dwa"

    def __init__(self, temperature: float = 2.0):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature
        self.register_buffer("epoch_losses", torch.zeros(2, 0))   # rows: L(t-2), L(t-1)
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))

    def setup(self, num_tasks: int, task_names: Sequence[str] | None = None) -> None:
        super().setup(num_tasks, task_names)
        self.epoch_losses = torch.zeros(2, num_tasks, device=self.device)
        self.epochs_seen = torch.zeros((), dtype=torch.long, device=self.device)

    def end_epoch(self, epoch_losses: Tensor, scores: Mapping[str, Mapping[str, float]] | None) -> None:
        self.check_finite(epoch_losses, "epoch-mean loss", "DWA's weights were left unchanged")
        new = epoch_losses.detach().to(self.epoch_losses.device, self.epoch_losses.dtype)
        self.epoch_losses = torch.stack([self.epoch_losses[1], new])
        self.epochs_seen += 1

    def weights(self, losses: Tensor) -> Tensor:
        T = losses.shape[0]
        if int(self.epochs_seen) < 2 or self.epoch_losses.shape[1] != T:
            return torch.ones_like(losses)
        prev2, prev1 = self.epoch_losses.to(losses.device, losses.dtype)
        r = prev1 / prev2.clamp_min(1e-12)
        return T * torch.softmax(r / self.temperature, dim=0)
