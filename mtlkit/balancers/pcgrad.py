"""PCGrad: project away the conflicting part of each task gradient.

For each task i, in a random order over j ≠ i:

    if g_i' · g_j < 0:   g_i' ← g_i' − (g_i' · g_j / ||g_j||²) g_j

starting from g_i' = g_i and always projecting on the ORIGINAL g_j; then
d = Σ_i g_i'. For two tasks this removes exactly the component of each gradient
along the other when they conflict. The order is drawn from this balancer's own
``torch.Generator`` (``seed``), so runs reproduce.

Every g_i' stays a combination Σ_k C_ik g_k of the original gradients, so the
projections run on the Gram matrix K = G Gᵀ (T × T) and d = (Σ_i C_i) G costs one
pass over G; ``last_weights`` holds the effective weights Σ_i C_i.

Degenerate cases: a zero gradient is never projected on (it has no direction)
and its own projection stays 0. Exactly opposite gradients project each other to
0, so d = 0 for T = 2. T = 1: d = g_1. T > P: nothing special, K is all it reads.
K is formed in float64, so gradients of norm 1e-30 or 1e20 in float32 are exact.

Yu, Kumar, Gupta, Levine, Hausman & Finn, "Gradient Surgery for Multi-Task
Learning", NeurIPS 2020, arXiv 2001.06782.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import GradientBalancer


class PCGrad(GradientBalancer):
    """Projecting conflicting gradients, random order per task."""

    name = "pcgrad"
    permutation_equivariant = False  # the random projection order is not

    def __init__(self, on: str = "params", seed: int = 0):
        super().__init__(on)
        self.generator = torch.Generator().manual_seed(seed)

    def combination(self, K: np.ndarray) -> np.ndarray:
        """C (T, T) with g_i' = Σ_k C_ik g_k, from the Gram matrix K."""
        T = K.shape[0]
        C = np.eye(T)
        for i in range(T):
            for j in torch.randperm(T, generator=self.generator).tolist():
                if j == i or K[j, j] <= 0:
                    continue
                dot = C[i] @ K[:, j]
                if dot < 0:
                    C[i, j] -= dot / K[j, j]
        return C

    def gram_weights(self, K: np.ndarray) -> np.ndarray:
        return self.combination(K).sum(axis=0)
