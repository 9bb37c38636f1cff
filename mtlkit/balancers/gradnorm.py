"""GradNorm: learn task weights so every task trains at a similar rate.

At the last shared layer W, with learnable weights w_i > 0:

    G_i = ||∇_W w_i L_i|| = w_i ||∇_W L_i||,     Ḡ = mean_i G_i
    L̃_i = L_i(t) / L_i(0),   r_i = L̃_i / mean_j L̃_j   (relative inverse training rate)
    L_grad = Σ_i | G_i − Ḡ r_i^α |                    (target Ḡ r_i^α held constant)

The network gets Σ_i w_i L_i (w held constant); w gets ∇_w L_grad, i.e.
∂L_grad/∂w_i = sign(G_i − Ḡ r_i^α) ||∇_W L_i||. After each optimizer step the
weights are clipped positive and renormalised to Σ_i w_i = T.

How it fits ``backward(losses, model, output)``: the weights are a parameter of
this balancer, so the Trainer's optimizer updates them with the model (the paper
also uses one optimizer); :meth:`backward` writes ∇_w L_grad into ``w.grad`` and
back-propagates Σ w_i L_i into the model; :meth:`after_step` renormalises.
W is ``model.last_shared_parameters()``; L_i(0) are the losses of the first
(successful) step.

Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient Normalization for
Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018, arXiv 1711.02257.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ..grads import task_gradients
from ..models.base import MTLOutput, MultiTaskModel
from .base import StepInfo, WeightingBalancer


class GradNorm(WeightingBalancer):
    """Weights learned by the GradNorm rule; ``alpha`` sets how strongly slow tasks are pushed."""

    name = "gradnorm"
    needs_model = True

    def __init__(self, alpha: float = 1.5, min_weight: float = 1e-3):
        super().__init__()
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha, self.min_weight = alpha, min_weight
        self.task_weights: nn.Parameter | None = None
        self.register_buffer("initial_losses", torch.zeros(0))
        self._first_losses: Tensor | None = None  # L(0), stored once the first step succeeded

    def setup(self, num_tasks: int, task_names: Sequence[str] | None = None) -> None:
        super().setup(num_tasks, task_names)
        self.task_weights = nn.Parameter(torch.ones(num_tasks, device=self.device))
        self.initial_losses = torch.full((num_tasks,), float("nan"), device=self.device)  # NaN: not seen yet

    def weights(self, losses: Tensor) -> Tensor:
        if self.task_weights is None:
            self.setup(losses.shape[0])
        return self.task_weights.detach().to(losses.device, losses.dtype)

    def weight_gradient(self, losses: Tensor, layer_grad_norms: Tensor) -> Tensor:
        """∇_w L_grad (T,) from the losses (T,) and ||∇_W L_i|| (T,).

        Until :meth:`after_step` has stored L(0), the current losses serve as L(0).
        """
        losses = losses.detach()
        w = self.weights(losses)
        if self._has_initial_losses(losses):
            initial = self.initial_losses.to(losses.device, losses.dtype)
        else:
            initial = losses.clamp_min(1e-12)
            self._first_losses = initial.clone()
        G = w * layer_grad_norms
        ratio = losses / initial
        r = ratio / ratio.mean().clamp_min(1e-12)
        target = G.mean() * r.pow(self.alpha)
        return torch.sign(G - target) * layer_grad_norms

    def _has_initial_losses(self, losses: Tensor) -> bool:
        return self.initial_losses.shape == losses.shape and not bool(torch.isnan(self.initial_losses).any())

    def backward(self, losses: Tensor, model: MultiTaskModel, output: MTLOutput) -> StepInfo:
        W = model.last_shared_parameters()
        if not W:
            raise ValueError(f"GradNorm needs a shared layer, but {type(model).__name__}.last_shared_parameters() "
                             "is empty (nothing is shared)")
        norms = task_gradients(losses, W).norm(dim=1)
        w = self.weights(losses)
        self.task_weights.grad = self.weight_gradient(losses, norms).to(self.task_weights.dtype)
        (w * losses).sum().backward()
        return StepInfo(weights=w.clone())

    @torch.no_grad()
    def renormalize(self) -> None:
        """Clip the weights positive and rescale them to sum to T."""
        w = self.task_weights
        w.clamp_(min=self.min_weight)
        w.mul_(w.numel() / w.sum())

    def after_step(self, losses_now: Callable[[], Tensor]) -> None:
        if self._first_losses is not None:
            self.initial_losses = self._first_losses.to(self.device)
            self._first_losses = None
        if self.task_weights is not None:
            self.renormalize()
