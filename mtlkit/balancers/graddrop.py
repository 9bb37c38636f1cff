"""GradDrop: keep, per coordinate, only the gradients of one sign, chosen at random.

For each coordinate k, the gradient sign purity

    P_k = ½ (1 + Σ_i g_ik / Σ_i |g_ik|)  ∈ [0, 1]

is the probability of keeping the positive components: with U_k ~ Uniform(0, 1),
task i's component g_ik is kept when (g_ik > 0 and U_k < P_k) or (g_ik < 0 and
U_k > P_k); d = Σ_i kept_i ⊙ g_i. With ``leak`` ℓ ∈ [0, 1] a fraction of every
gradient always passes: d = Σ_i (ℓ + (1-ℓ) kept_i) ⊙ g_i. The paper applies it to
gradients at an activation layer: use ``on="z"`` for that. One U_k per
coordinate (shared by all tasks), drawn from the balancer's seeded generator.

Degenerate cases: a coordinate where every task's gradient is 0 has P = ½ and
contributes 0. T = 1: d = g_1 (every component has the sign purity's sign).
A zero task gradient takes part in nothing. T > P: nothing special.

Chen, Ngiam, Huang, Luong, Kretzschmar, Chai & Anguelov, "Just Pick a Sign:
Optimizing Deep Multitask Models with Gradient Sign Dropout", NeurIPS 2020,
arXiv 2010.06808.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .base import GradientBalancer


class GradDrop(GradientBalancer):
    """Gradient sign dropout with sign purity P = ½(1 + Σg / Σ|g|)."""

    name = "graddrop"
    permutation_equivariant = True  # P and U do not depend on the task order
    uses_gram = False

    def __init__(self, on: str = "params", leak: float = 0.0, seed: int = 0):
        super().__init__(on)
        if not 0.0 <= leak <= 1.0:
            raise ValueError(f"leak must lie in [0, 1], got {leak}")
        self.leak = leak
        self.generator = torch.Generator().manual_seed(seed)

    def combine(self, G: Tensor, K: None) -> Tensor:
        total, mass = G.sum(dim=0), G.abs().sum(dim=0)
        purity = 0.5 * (1 + torch.where(mass > 0, total / mass.clamp_min(1e-30), torch.zeros_like(total)))
        U = torch.rand(G.shape[1], generator=self.generator).to(G.device, G.dtype)
        keep = ((G > 0) & (U < purity)) | ((G < 0) & (U > purity))
        mask = self.leak + (1 - self.leak) * keep.to(G.dtype)
        return (mask * G).sum(dim=0)
