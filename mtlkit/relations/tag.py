"""TAG: lookahead inter-task affinity, measured during one joint training run.

How much would one step on task i alone change task j's loss? With θ_s the shared
parameters and θ_s^{t+1,i} = θ_s^t − η ∇_{θ_s} L_i(x, θ_s^t) a lookahead SGD step on
task i only,

    Z^t_{i→j} = 1 − L_j(x, θ_s^{t+1,i}) / L_j(x, θ_s^t)

positive when i's step also lowers L_j, negative when it raises it. TAG averages Z^t
over training, Ẑ_{i→j} = (1/n) Σ_t Z^t_{i→j}, and picks groups that maximise the
affinity onto every task (:mod:`mtlkit.relations.grouping`). Cost: one training run
of all tasks together, plus T gradients and T lookahead forward passes at every
measured step, against Standley et al.'s O(T²) trainings.

The lookahead runs the model with replaced shared parameters through
``torch.func.functional_call``: the model is never copied or modified. Only the
shared parameters move; task heads keep their values (as in the paper).
Simplification: the lookahead is a plain SGD step of size η even when training uses
Adam (the paper uses the training optimiser's update).

C. Fifty, E. Amid, Z. Zhao, T. Yu, R. Anil, C. Finn, "Efficiently Identifying Task
Groupings for Multi-Task Learning", NeurIPS 2021, arXiv 2109.04617.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor
from torch.func import functional_call

from ..data.base import MultiTaskDataset
from ..grads import check_finite_gradients, task_gradients
from ..models.base import MultiTaskModel
from ..train import Trainer
from .base import AveragedAffinity, shared_or_fail


def lookahead_affinity(model: MultiTaskModel, x: Tensor, targets: Mapping[str, Tensor], lr: float) -> Tensor:
    """Z (T, T) at the current parameters on one batch: Z[i, j] = 1 − L_j(θ_s − lr ∇L_i) / L_j(θ_s)."""
    if not lr > 0:
        raise ValueError(f"lookahead learning rate must be positive, got {lr}")
    shared = shared_or_fail(model, "TAG lookahead affinity")
    losses = model.loss_vector(x, targets)[0]
    G = task_gradients(losses, shared, retain_graph=False)  # (T, P)
    check_finite_gradients(G, model.tasks)
    names = {id(p): n for n, p in model.named_parameters()}
    sizes = [p.numel() for p in shared]
    before = losses.detach()
    rows = []
    with torch.no_grad():
        for g in G:
            steps = torch.split(g, sizes)
            moved = {names[id(p)]: p - lr * s.view_as(p) for p, s in zip(shared, steps)}
            rows.append(1 - _losses_with(model, moved, x, targets) / before)
    return torch.stack(rows)


class _LossVector(torch.nn.Module):
    """The model's loss vector as a module's forward, so functional_call can run it with moved parameters."""

    def __init__(self, model: MultiTaskModel):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, targets: Mapping[str, Tensor]) -> Tensor:
        return self.model.loss_vector(x, targets)[0]


def _losses_with(model: MultiTaskModel, params: dict[str, Tensor], x: Tensor, targets: Mapping[str, Tensor]
                 ) -> Tensor:
    """The same loss vector as training (auxiliary terms included) with some parameters replaced."""
    moved = {f"model.{name}": value for name, value in params.items()}
    return functional_call(_LossVector(model), moved, (x, targets), strict=False)


class TAGAffinity(AveragedAffinity):
    """Trainer callback: the lookahead affinity Ẑ averaged over training (see module docstring).

    ``lr`` is the lookahead step η; ``None`` uses the trainer's learning rate.
    """

    method = "tag"

    def __init__(self, data: MultiTaskDataset, every: int = 1, lr: float | None = None, batch_size: int = 64,
                 seed: int = 0):
        super().__init__(data, every, batch_size, seed)
        self.lr = lr

    def measure(self, model: MultiTaskModel, x: Tensor, targets: Mapping[str, Tensor], trainer: Trainer) -> Tensor:
        return lookahead_affinity(model, x, targets, self.lr if self.lr is not None else trainer.lr)


__all__ = ["TAGAffinity", "lookahead_affinity"]
