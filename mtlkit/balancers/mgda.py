"""MGDA: the minimum-norm point of the convex hull of the task gradients.

    α* = argmin_{α ∈ Δ} ||Σ_i α_i g_i||²,    d = Σ_i α*_i g_i

d is a common descent direction (d·g_i ≥ ||d||² for every i, with equality for
every task of positive weight: each active task gets the same first-order decrease)
and d = 0 exactly at a Pareto-stationary point. Not scale-free: multiplying one
loss by a constant moves d, and the min-norm point leans towards the smaller
gradient. Solved exactly on the Gram matrix K = G Gᵀ (float64), for any T, as the
non-negative least-squares problem it is dual to (``solvers.min_norm_point``).

Degenerate cases: a zero task gradient puts 0 in the hull, so d = 0: by MGDA's
definition the point is already Pareto-stationary (no direction decreases that
task to first order), and MGDA stops. T = 1: d = g_1. T > P: the hull usually contains
0 and d = 0; otherwise the weights may not be unique, d is.

Gradient normalisations (Sener & Koltun's code): before solving, g_i is divided
by n_i with ``"none"``: 1, ``"l2"``: ||g_i||, ``"loss"``: L_i, ``"loss+"``:
L_i ||g_i||. As in their code, the weights found on the normalised gradients are
applied to the raw ones, d = Σ α_i g_i (for ``"none"`` that is the min-norm point).
The loss-based normalisations read the step's losses (the Trainer passes them;
called directly, pass them as ``aggregate(G, losses)``); they must be positive.

MGDA-UB (``mgda_ub``, ``on="z"``) uses ∇_z L_i at the shared representation z:
one backward through the trunk, and an upper bound of the same objective.

Désidéri, "Multiple-gradient descent algorithm (MGDA) for multiobjective
optimization", C. R. Math. 2012; Sener & Koltun, "Multi-Task Learning as
Multi-Objective Optimization", NeurIPS 2018, arXiv 1810.04650.
"""
from __future__ import annotations

import numpy as np
from torch import Tensor

from .base import GradientBalancer
from .solvers import min_norm_point

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

    def normalizers(self, K: np.ndarray, losses: Tensor | None) -> np.ndarray:
        """(T,) the n_i each g_i is divided by before solving (1 where n_i = 0: a zero gradient stays 0)."""
        T = K.shape[0]
        if self.normalization == "none":
            return np.ones(T)
        norms = np.sqrt(np.clip(np.diag(K), 0.0, None))
        if self.normalization == "l2":
            return np.where(norms > 0, norms, 1.0)
        if losses is None:
            raise ValueError(f"normalization {self.normalization!r} needs the losses: aggregate(G, losses)")
        L = losses.detach().double().cpu().numpy()
        if L.shape != (T,):
            raise ValueError(f"losses must have shape ({T},) to match G, got {tuple(L.shape)}")
        self.check_finite(losses, "loss")
        if (L <= 0).any():
            bad = ", ".join(f"{self.task_label(i)} (loss={L[i]:g})" for i in np.flatnonzero(L <= 0))
            raise ValueError(f"normalization {self.normalization!r} divides by the loss, which must be positive; "
                             f"task {bad}")
        n = L if self.normalization == "loss" else L * norms
        return np.where(n > 0, n, 1.0)

    def gram_weights(self, K: np.ndarray) -> np.ndarray:
        n = self.normalizers(K, self.last_losses)
        return min_norm_point(K / np.outer(n, n))  # weights found on g_i / n_i, applied to the raw g_i


class MGDAUB(MGDA):
    """MGDA on the representation gradients ∇_z L_i (Sener & Koltun's upper bound)."""

    name = "mgda_ub"

    def __init__(self, on: str = "z", normalization: str = "none"):
        super().__init__(on, normalization)
