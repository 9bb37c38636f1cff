"""FAMO: fast adaptive multitask optimization, balanced loss decrease at O(1) cost.

Keeps task logits ξ (T,), z = softmax(ξ). The model step minimises

    Σ_i z_i log(L_i − L_i* + ε) / c,   c = Σ_i z_i / (L_i − L_i* + ε)   (c held constant)

i.e. weights w_i = z_i / (c (L_i − L_i* + ε)) on the raw losses (Σ w_i = 1).
After the step, on the same batch, the observed log-loss decrease
δ_i = log(L_i^{before} + ε) − log(L_i^{after} + ε) updates the logits with
ξ ← Adam(ξ, ∇_ξ z(ξ)ᵀ δ, lr=``lr``, weight decay γ): tasks that improved less
gain weight. No per-task gradients are ever computed: one backward per step.
L* (the losses' lower bounds) are 0, as in the official code.

Liu, Feng, Stone & Liu, "FAMO: Fast Adaptive Multitask Optimization",
NeurIPS 2023, arXiv 2306.03792.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

from .base import WeightingBalancer


class FAMO(WeightingBalancer):
    """Loss weights from logits ξ learned from the observed decrease of log losses."""

    name = "famo"

    def __init__(self, lr: float = 0.025, gamma: float = 0.01, eps: float = 1e-8,
                 betas: tuple[float, float] = (0.9, 0.999)):
        super().__init__()
        self.lr, self.gamma, self.eps, self.betas = lr, gamma, eps, betas
        for buf in ("logits", "adam_m", "adam_v"):
            self.register_buffer(buf, torch.zeros(0))
        self.prev_losses: Tensor | None = None  # this step's losses, until after_step
        self.register_buffer("adam_step", torch.zeros((), dtype=torch.long))

    def setup(self, num_tasks: int, task_names: Sequence[str] | None = None) -> None:
        super().setup(num_tasks, task_names)
        for buf in ("logits", "adam_m", "adam_v"):
            setattr(self, buf, torch.zeros(num_tasks, device=self.device))
        self.prev_losses = None
        self.adam_step = torch.zeros((), dtype=torch.long, device=self.device)

    def weights(self, losses: Tensor) -> Tensor:
        self.check_finite(losses, "loss")
        if self.logits.numel() != losses.numel():
            self.setup(losses.numel())
        self.prev_losses = losses.detach().clone()
        z = torch.softmax(self.logits.to(losses.device, losses.dtype), dim=0)
        D = losses.detach() + self.eps
        c = (z / D).sum()
        return z / (c * D)

    def objective(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        # Σ w_i L_i has the same gradient as Σ z_i log(L_i + ε) / c
        w = self.weights(losses)
        return (w * losses).sum(), w

    def logit_gradient(self, before: Tensor, after: Tensor) -> Tensor:
        """∇_ξ z(ξ)ᵀ δ with δ = log(before + ε) − log(after + ε): (T,)."""
        delta = torch.log(before + self.eps) - torch.log(after + self.eps)
        z = torch.softmax(self.logits, dim=0)
        return z * (delta - (z * delta).sum())

    @torch.no_grad()
    def update_logits(self, before: Tensor, after: Tensor) -> None:
        """One Adam step on ξ (with L2 weight decay γ, as torch.optim.Adam does)."""
        g = self.logit_gradient(before.to(self.logits), after.to(self.logits)) + self.gamma * self.logits
        b1, b2 = self.betas
        self.adam_step += 1
        t = int(self.adam_step)
        self.adam_m = b1 * self.adam_m + (1 - b1) * g
        self.adam_v = b2 * self.adam_v + (1 - b2) * g * g
        m_hat = self.adam_m / (1 - b1 ** t)
        v_hat = self.adam_v / (1 - b2 ** t)
        self.logits = self.logits - self.lr * m_hat / (v_hat.sqrt() + 1e-8)

    def after_step(self, losses_now: Callable[[], Tensor]) -> None:
        if self.prev_losses is None:
            return
        after = losses_now().detach()
        # a non-finite loss after the step would poison the logits for the rest of the run
        self.check_finite(after, "loss after the step", "FAMO's logits were left unchanged")
        self.update_logits(self.prev_losses, after)
        self.prev_losses = None
