"""MGDA: the minimum-norm point of the convex hull of the task gradients.

    α* = argmin_{α ∈ Δ} ||Σ_i α_i g_i||²,    d = Σ_i α*_i g_i

d is a common descent direction (d·g_i ≥ ||d||² for every i) and d = 0 exactly
at a Pareto-stationary point. Solved on the Gram matrix K = G Gᵀ: closed form
for T = 2, Frank-Wolfe with exact line search otherwise.

Gradient normalisations (Sener & Koltun's code): before solving, g_i is divided
by n_i with ``"none"``: 1, ``"l2"``: ||g_i||, ``"loss"``: L_i, ``"loss+"``:
L_i ||g_i||. As in their code, the weights found on the normalised gradients are
applied to the raw ones, d = Σ α_i g_i (for ``"none"`` that is the min-norm point).
The loss-based normalisations read the losses the base class stores before
:meth:`aggregate`; called directly, pass them as ``aggregate(G, losses)``.

MGDA-UB (``mgda_ub``, ``on="z"``) uses ∇_z L_i at the shared representation z:
one backward through the trunk, and an upper bound of the same objective.

Désidéri, "Multiple-gradient descent algorithm (MGDA) for multiobjective
optimization", C. R. Math. 2012; Sener & Koltun, "Multi-Task Learning as
Multi-Objective Optimization", NeurIPS 2018, arXiv 1810.04650.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ._simplex import as_weights, gram, min_norm_simplex
from .base import GradientBalancer

NORMALIZATIONS = ("none", "l2", "loss", "loss+")


class MGDA(GradientBalancer):
    """Min-norm convex combination of the task gradients (Frank-Wolfe on K)."""

    name = "mgda"
    permutation_equivariant = True

    def __init__(self, on: str = "params", normalization: str = "none"):
        super().__init__(on)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        self.normalization = normalization

    def normalizers(self, G: Tensor, losses: Tensor | None) -> Tensor:
        """(T,) the n_i each g_i is divided by before solving."""
        ones = torch.ones(G.shape[0], dtype=G.dtype, device=G.device)
        if self.normalization == "none":
            return ones
        norms = G.norm(dim=1)
        if self.normalization == "l2":
            return norms
        if losses is None:
            raise ValueError(f"normalization {self.normalization!r} needs the losses: aggregate(G, losses)")
        losses = losses.detach().to(G.device, G.dtype)
        return losses if self.normalization == "loss" else losses * norms

    def aggregate(self, G: Tensor, losses: Tensor | None = None) -> Tensor:
        losses = self.last_losses if losses is None else losses
        n = self.normalizers(G, losses)
        safe = torch.where(n.abs() > 1e-12, n, torch.ones_like(n))
        alpha = as_weights(min_norm_simplex(gram(G / safe[:, None])), G)
        self.last_weights = alpha
        return alpha @ G


class MGDAUB(MGDA):
    """MGDA on the representation gradients ∇_z L_i (Sener & Koltun's upper bound)."""

    name = "mgda_ub"

    def __init__(self, on: str = "z", normalization: str = "none"):
        super().__init__(on, normalization)
