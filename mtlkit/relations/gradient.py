"""Gradient-cosine affinity: how aligned the tasks' gradients on the shared parameters are, along training.

    C^t_{ij} = cos(g_i^t, g_j^t) = g_iᵀ g_j / (||g_i|| ||g_j||),   g_i^t = ∇_{θ_s} L_i(x, θ^t)

averaged over training, Ĉ = (1/n) Σ_t C^t. Symmetric, unlike TAG's lookahead
affinity, and blind to step size and curvature: to first order the TAG affinity is
Z_{i→j} ≈ η g_iᵀ g_j / L_j, a scaled inner product. Cosine similarity of task
gradients as a measure of task relatedness: Du et al., "Adapting Auxiliary Losses
Using Gradient Similarity", arXiv 1812.02224 (2018); Yu et al. (PCGrad), NeurIPS
2020, arXiv 2001.06782. It costs one joint training run plus T gradients per measured step.
"""
from __future__ import annotations

from typing import Mapping

from torch import Tensor

from ..grads import check_finite_gradients, cosine_matrix, task_gradients
from ..models.base import MultiTaskModel
from ..train import Trainer
from .base import AveragedAffinity, shared_or_fail


def gradient_cosine(model: MultiTaskModel, x: Tensor, targets: Mapping[str, Tensor]) -> Tensor:
    """C (T, T): cosines between the tasks' gradients on the shared parameters, on one batch."""
    shared = shared_or_fail(model, "gradient-cosine affinity")
    G = task_gradients(model.loss_vector(x, targets)[0], shared, retain_graph=False)
    check_finite_gradients(G, model.tasks)
    return cosine_matrix(G)


class GradientCosineAffinity(AveragedAffinity):
    """Trainer callback: the gradient cosine matrix Ĉ averaged over training."""

    method = "cosine"

    def measure(self, model: MultiTaskModel, x: Tensor, targets: Mapping[str, Tensor], trainer: Trainer) -> Tensor:
        return gradient_cosine(model, x, targets)


__all__ = ["GradientCosineAffinity", "gradient_cosine"]
