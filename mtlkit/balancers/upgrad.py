"""UPGrad: average the projections of every task gradient onto the dual cone.

The dual cone of the task gradients is C = {x : g_j·x ≥ 0 for every j} (updates
that conflict with no task). UPGrad projects each g_i onto C and averages:

    d = (1/T) Σ_i Π_C(g_i),       so  g_j · d ≥ 0 for every j

C depends only on the directions u_j = g_j / ||g_j||, and Π_C is positively
homogeneous, so Π_C(g_i) = ||g_i|| Π_C(u_i): the projections are solved on the
cosine matrix of the unit gradients (scale-free: a gradient 10⁻⁹ times the others
is as much a constraint as any). Π_C(u_i) = Σ_j v_ij u_j with v_i = e_i + μ_i,
μ_i = argmin_{μ ≥ 0} ||Σ_j (e_i + μ)_j u_j||² (the dual of the projection), a
non-negative least-squares problem (``solvers.cone_projection_weights``).

Degenerate cases: a zero gradient imposes no constraint (0·x ≥ 0 always holds)
and its projection is 0, so it adds nothing to the sum but still counts in the
1/T. T = 1: d = g_1 (it lies in its own cone). T > P and rank-deficient G: C may
shrink to a subspace or to {0}; the projections, hence d, stay unique.

Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization",
arXiv 2406.16232 (2024); the reference implementation is the torchjd library
(not a dependency here).
"""
from __future__ import annotations

import numpy as np

from .base import GradientBalancer
from .solvers import cone_projection_weights, unit_gram


def upgrad_weights(K: np.ndarray) -> np.ndarray:
    """w (T,) with d = Σ_j w_j g_j = (1/T) Σ_i Π_C(g_i), from the Gram matrix K."""
    T = K.shape[0]
    C, norms, nonzero = unit_gram(K)
    w = np.zeros(T)
    if nonzero.any():
        n = norms[nonzero]
        V = cone_projection_weights(C)            # Π(u_i) = Σ_j V_ij u_j
        w[nonzero] = (n @ V) / n / T              # Σ_i ||g_i|| V_ij u_j = Σ_i ||g_i|| V_ij / ||g_j|| g_j
    return w


class UPGrad(GradientBalancer):
    """Unconflicting projection of gradients, averaged over the tasks."""

    name = "upgrad"
    permutation_equivariant = True
    gram_weights = staticmethod(upgrad_weights)
