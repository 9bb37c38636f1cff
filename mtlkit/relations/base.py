"""What every affinity method returns, and the plumbing shared by those measured during one training run.

An affinity matrix A (T, T) holds A[i, j] = how much task i helps task j (row: the
source, column: the target). :class:`Affinity` carries it with its cost: how many
networks were trained to get it and how long that took, so methods can be compared
on what they cost as well as on what they find.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import Tensor

from ..data.base import MultiTaskDataset
from ..models.base import MultiTaskModel
from ..train import Callback, StepResult, Trainer
from .grouping import ValueFn, affinity_values


@dataclass(frozen=True)
class Affinity:
    """A[i, j]: affinity of task i onto task j; ``runs`` trainings and ``seconds`` of wall time spent on it."""

    method: str
    tasks: tuple[str, ...]
    matrix: Tensor
    runs: int
    seconds: float

    def __post_init__(self) -> None:
        T = len(self.tasks)
        if tuple(self.matrix.shape) != (T, T):
            raise ValueError(f"{self.method}: affinity matrix must be ({T}, {T}) for tasks {self.tasks}, "
                             f"got shape {tuple(self.matrix.shape)}")

    def values(self) -> ValueFn:
        """v_j(g) = mean affinity onto j from its partners in g (the values that ``select_groups`` maximises)."""
        return affinity_values(self.matrix)


def shared_or_fail(model: MultiTaskModel, what: str) -> list[torch.nn.Parameter]:
    """The shared parameters, or an error naming ``what`` needs them."""
    shared = model.shared_parameters()
    if not shared:
        raise ValueError(f"{what} needs shared parameters, but {type(model).__name__} shares none "
                         "(tasks only interact through shared parameters)")
    return shared


class AveragedAffinity(Callback):
    """A Trainer callback averaging ``measure(model, x, targets)`` (T, T) over training.

    Every ``every`` steps it draws a batch from ``data`` (its own stream, so the
    training batches are untouched) and measures the affinity at the current
    parameters. ``seconds`` is the wall time spent measuring.
    """

    method = "affinity"

    def __init__(self, data: MultiTaskDataset, every: int = 1, batch_size: int = 64, seed: int = 0):
        if every < 1:
            raise ValueError(f"every must be >= 1 step, got {every}")
        self.data, self.every = data, every
        self._stream = data.stream(batch_size, torch.Generator().manual_seed(seed))
        self.total: Tensor | None = None
        self.count = 0
        self.seconds = 0.0
        self.history: list[Tensor] = []

    def measure(self, model: MultiTaskModel, x: Tensor, targets: Mapping[str, Tensor], trainer: Trainer) -> Tensor:
        raise NotImplementedError

    def on_step(self, trainer: Trainer, result: StepResult) -> None:
        if result.step % self.every:
            return
        start = time.perf_counter()
        x, targets = next(self._stream)
        device = next(trainer.model.parameters()).device
        Z = self.measure(trainer.model, x.to(device), {n: y.to(device) for n, y in targets.items()}, trainer)
        Z = Z.detach().double().cpu()
        self.total = Z if self.total is None else self.total + Z
        self.count += 1
        self.history.append(Z)
        self.seconds += time.perf_counter() - start

    @property
    def matrix(self) -> Tensor:
        """The mean (T, T) affinity over the steps measured so far."""
        if self.total is None:
            raise RuntimeError(f"{type(self).__name__} has measured nothing yet: attach it to a Trainer and train "
                               f"for at least {self.every} steps")
        return self.total / self.count

    def result(self, runs: int = 1, train_seconds: float = 0.0) -> Affinity:
        """The averaged affinity, costed at ``runs`` trainings and ``train_seconds`` plus the measuring time."""
        return Affinity(self.method, tuple(self.data.tasks.names), self.matrix.float(), runs,
                        train_seconds + self.seconds)


def fit_readout(features: Tensor, target: Tensor, task, steps: int = 300, lr: float = 0.05, ridge: float = 1e-3
                ) -> torch.nn.Linear:
    """A linear readout from frozen ``features`` (N, F) to one task's output, fitted on the whole set.

    Regression: ridge least squares in closed form, W = (FᵀF + λ N I)⁻¹ Fᵀ Y with a bias.
    Classification: ``steps`` full-batch Adam steps on the cross-entropy.
    """
    features = features.detach().flatten(1)
    head = torch.nn.Linear(features.shape[1], task.out_dim).to(features.device)
    if task.kind == "regression":
        X = torch.cat([features, torch.ones(len(features), 1, device=features.device)], 1).double()
        Y = target.reshape(len(target), -1).double()
        reg = ridge * len(X) * torch.eye(X.shape[1], dtype=X.dtype, device=X.device)
        reg[-1, -1] = 0.0
        W = torch.linalg.solve(X.T @ X + reg, X.T @ Y)
        with torch.no_grad():
            head.weight.copy_(W[:-1].T)
            head.bias.copy_(W[-1])
        return head
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        task.loss(head(features), target).backward()
        optimizer.step()
    return head

__all__ = ["Affinity", "AveragedAffinity", "fit_readout", "shared_or_fail"]
