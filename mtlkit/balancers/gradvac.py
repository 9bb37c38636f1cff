"""Gradient vaccine (GradVac): pull each pair's cosine up to an adaptive target.

Keeps an EMA target φ̂_ij of the cosine between tasks i and j. For each task i,
in a random order over j ≠ i, with φ_ij = cos(g_i', g_j):

    if φ_ij < φ̂_ij:
        g_i' ← g_i' + g_j ||g_i'|| (φ̂_ij √(1−φ_ij²) − φ_ij √(1−φ̂_ij²)) / (||g_j|| √(1−φ̂_ij²))
    φ̂_ij ← (1 − β) φ̂_ij + β φ_ij

which sets cos(g_i', g_j) to exactly φ̂_ij; d = Σ_i g_i'. Targets start at 0, so
the first step is PCGrad-like (conflicting pairs made orthogonal). The update is
applied to the whole gradient vector (the paper also offers per-layer targets).
Like PCGrad it runs on the Gram matrix (g_i' = Σ_k C_ik g_k).

Degenerate cases: a zero gradient (or one projected to 0) is skipped both as
source and as target, and its EMA target is not updated. T = 1: d = g_1.
T > P: nothing special, K is all it reads (formed in float64).

Wang, Tsvetkov, Firat & Cao, "Gradient Vaccine: Investigating and Improving
Multi-task Optimization in Massively Multilingual Models", ICLR 2021,
arXiv 2010.05874.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .base import GradientBalancer


class GradVac(GradientBalancer):
    """Adaptive cosine targets (EMA rate ``beta``), random order per task."""

    name = "gradvac"
    permutation_equivariant = False  # random order

    def __init__(self, on: str = "params", beta: float = 0.01, seed: int = 0):
        super().__init__(on)
        if not 0.0 < beta <= 1.0:
            raise ValueError(f"beta must lie in (0, 1], got {beta}")
        self.beta = beta
        self.generator = torch.Generator().manual_seed(seed)
        self.register_buffer("targets", torch.zeros(0, 0, dtype=torch.float64))

    def setup(self, num_tasks: int, task_names: Sequence[str] | None = None) -> None:
        super().setup(num_tasks, task_names)
        self.targets = torch.zeros(num_tasks, num_tasks, dtype=torch.float64, device=self.device)

    def combination(self, K: np.ndarray) -> np.ndarray:
        """C (T, T) with g_i' = Σ_k C_ik g_k; updates the EMA targets."""
        T = K.shape[0]
        if self.targets.shape != (T, T):
            self.setup(T)
        target = self.targets.cpu().numpy().copy()
        norms = np.sqrt(np.clip(np.diag(K), 0, None))
        C = np.eye(T)
        for i in range(T):
            for j in torch.randperm(T, generator=self.generator).tolist():
                norm_i = np.sqrt(max(C[i] @ K @ C[i], 0.0))
                if j == i or norms[j] <= 0 or norm_i <= 0:
                    continue
                phi = float(np.clip(C[i] @ K[:, j] / (norm_i * norms[j]), -1.0, 1.0))
                hat = float(np.clip(target[i, j], -1 + 1e-6, 1 - 1e-6))
                if phi < hat:
                    s, s_hat = np.sqrt(1 - phi ** 2), np.sqrt(1 - hat ** 2)
                    C[i, j] += norm_i * (hat * s - phi * s_hat) / (norms[j] * s_hat)
                target[i, j] = (1 - self.beta) * target[i, j] + self.beta * phi
        self.targets = torch.as_tensor(target, device=self.targets.device)
        return C

    def gram_weights(self, K: np.ndarray) -> np.ndarray:
        return self.combination(K).sum(axis=0)
