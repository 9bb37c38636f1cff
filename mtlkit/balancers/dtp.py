"""Dynamic task prioritization (DTP): focus on the tasks whose score is worst.

    w_i = -(1 - κ_i)^γ log κ_i

κ_i ∈ (0, 1] is a moving average of task i's key performance indicator (KPI),
γ ≥ 0 the focusing exponent (a focal loss on the KPI). A task whose KPI is low
(hard) gets a large weight; a task near its best (κ → 1) gets a weight near 0.

KPI in mtlkit: task i's primary metric on the validation set, taken at every
epoch end (``end_epoch`` scores), mapped to [0, 1]:

* higher-is-better metrics (accuracy) are used as they are, clipped to [0, 1];
* lower-is-better metrics (MSE, MAE) become κ = exp(-m / m₀), with m₀ the task's
  first reported value: 0.37 at the first epoch, → 1 as the error → 0.

Without a validation set the epoch-mean training loss is the (lower-is-better)
metric. κ is averaged as κ ← β κ + (1 − β) κ_new (β = ``decay``). Until the
first epoch ends every w_i = 1. With ``normalize=True`` (default) the weights are
rescaled to sum to T, so the step size stays comparable with equal weighting;
the paper leaves them unnormalised.

Guo, Haque, Huang, Yeung & Fei-Fei, "Dynamic Task Prioritization for Multitask
Learning", ECCV 2018.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import Tensor

from ..tasks import TaskSet
from ..models.base import MTLOutput, MultiTaskModel
from .base import WeightingBalancer


class DynamicTaskPrioritization(WeightingBalancer):
    """Focal weights -(1-κ)^γ log κ from moving-average KPIs κ, updated in :meth:`end_epoch`."""

    name = "dtp"
    needs_model = True

    def __init__(self, gamma: float = 1.0, decay: float = 0.5, normalize: bool = True, eps: float = 1e-4):
        super().__init__()
        if gamma < 0 or not 0 <= decay < 1:
            raise ValueError(f"need gamma >= 0 and 0 <= decay < 1, got gamma={gamma}, decay={decay}")
        self.gamma, self.decay, self.normalize, self.eps = gamma, decay, normalize, eps
        self.tasks: TaskSet | None = None
        self.register_buffer("kappa", torch.zeros(0))
        self.register_buffer("reference", torch.zeros(0))
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))

    def setup(self, num_tasks: int, task_names: Sequence[str] | None = None) -> None:
        super().setup(num_tasks, task_names)
        self.kappa = torch.ones(num_tasks, device=self.device)
        self.reference = torch.full((num_tasks,), float("nan"), device=self.device)
        self.epochs_seen = torch.zeros((), dtype=torch.long, device=self.device)

    def backward(self, losses: Tensor, model: MultiTaskModel, output: MTLOutput):
        self.tasks = model.tasks
        return super().backward(losses, model, output)

    def kpi(self, epoch_losses: Tensor, scores: Mapping[str, Mapping[str, float]] | None) -> Tensor:
        """(T,) this epoch's KPIs in (0, 1], as the module docstring describes."""
        values, higher = [], []
        for i in range(epoch_losses.shape[0]):
            value, better_up = float(epoch_losses[i]), False
            if self.tasks is not None and scores is not None:
                name = self.tasks.names[i]
                metric = self.tasks[name].primary_metric
                if name in scores and metric.name in scores[name]:
                    value, better_up = float(scores[name][metric.name]), metric.higher_is_better
            values.append(value)
            higher.append(better_up)
        out = []
        for i, (value, better_up) in enumerate(zip(values, higher)):
            if better_up:
                out.append(min(max(value, 0.0), 1.0))
                continue
            if math.isnan(float(self.reference[i])):
                self.reference[i] = max(abs(value), 1e-12)
            out.append(math.exp(-max(value, 0.0) / float(self.reference[i])))
        return torch.tensor(out, device=self.kappa.device)

    def end_epoch(self, epoch_losses: Tensor, scores: Mapping[str, Mapping[str, float]] | None) -> None:
        self.check_finite(epoch_losses, "epoch-mean loss", "DTP's KPIs were left unchanged")
        new = self.kpi(epoch_losses.detach().cpu(), scores)
        first = int(self.epochs_seen) == 0
        self.kappa = new if first else self.decay * self.kappa + (1 - self.decay) * new
        self.epochs_seen += 1

    def weights(self, losses: Tensor) -> Tensor:
        if int(self.epochs_seen) == 0 or self.kappa.shape != losses.shape:
            return torch.ones_like(losses)
        k = self.kappa.to(losses.device, losses.dtype).clamp(self.eps, 1 - self.eps)
        w = -((1 - k) ** self.gamma) * torch.log(k)
        return losses.shape[0] * w / w.sum() if self.normalize else w
