"""Task specifications: what each task predicts, how it is scored, which way is better.

A :class:`Task` names its loss and its metrics; a :class:`TaskSet` is the ordered
collection a model, a dataset and a balancer agree on. The order of a TaskSet is
the order of the rows of the gradient matrix G and of the loss vector.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

LossFn = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class Metric:
    """A per-task score. ``higher_is_better`` decides the sign in delta-m%."""

    name: str
    fn: Callable[[Tensor, Tensor], Tensor]
    higher_is_better: bool


def _mse(pred: Tensor, target: Tensor) -> Tensor:
    return F.mse_loss(pred, target)


def _mae(pred: Tensor, target: Tensor) -> Tensor:
    return F.l1_loss(pred, target)


def _accuracy(logits: Tensor, target: Tensor) -> Tensor:
    return (logits.argmax(dim=1) == target).float().mean()


MSE = Metric("mse", _mse, higher_is_better=False)
MAE = Metric("mae", _mae, higher_is_better=False)
ACCURACY = Metric("accuracy", _accuracy, higher_is_better=True)


def cosine_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean of 1 - cos(pred, target) over every position; vectors along dim 1 (surface normals: (B, 3, H, W))."""
    return (1 - F.cosine_similarity(pred, target, dim=1, eps=1e-8)).mean()


LOSSES: dict[str, LossFn] = {"mse": F.mse_loss, "l1": F.l1_loss, "cross_entropy": F.cross_entropy,
                             "cosine": cosine_loss}


@dataclass(frozen=True)
class Task:
    """One task: a name, a loss, its metrics and the size of its head's output.

    ``kind`` is ``"regression"`` (output has the target's shape) or
    ``"classification"`` (output (B, C, ...) of logits, integer target (B, ...)).
    """

    name: str
    kind: str
    out_dim: int
    loss_name: str = "mse"
    metrics: tuple[Metric, ...] = field(default=(MSE,))

    def __post_init__(self) -> None:
        if self.kind not in {"regression", "classification"}:
            raise ValueError(f"task {self.name!r}: kind must be 'regression' or 'classification', got {self.kind!r}")
        if self.loss_name not in LOSSES:
            raise ValueError(f"task {self.name!r}: unknown loss {self.loss_name!r}; known: {sorted(LOSSES)}")
        if self.out_dim < 1:
            raise ValueError(f"task {self.name!r}: out_dim must be >= 1, got {self.out_dim}")

    @property
    def primary_metric(self) -> Metric:
        return self.metrics[0]

    def check(self, output: Tensor, target: Tensor) -> None:
        """Raise a ValueError naming this task and both shapes if they do not fit."""
        if self.kind == "regression":
            ok = output.shape == target.shape
            expected = f"output shape equal to target shape {tuple(target.shape)}"
        else:
            ok = (output.dim() == target.dim() + 1 and output.shape[0] == target.shape[0]
                  and output.shape[2:] == target.shape[1:] and output.shape[1] == self.out_dim)
            expected = f"logits of shape (B, {self.out_dim}, ...) for integer targets of shape (B, ...)"
        if not ok:
            raise ValueError(
                f"task {self.name!r}: head output has shape {tuple(output.shape)} but targets have shape "
                f"{tuple(target.shape)}; expected {expected}")

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """This task's scalar loss, after checking that output and target fit."""
        self.check(output, target)
        return LOSSES[self.loss_name](output, target)

    def evaluate(self, output: Tensor, target: Tensor) -> dict[str, float]:
        """Every metric of this task on one batch, as Python floats."""
        self.check(output, target)
        return {m.name: float(m.fn(output, target)) for m in self.metrics}


def regression(name: str, out_dim: int = 1, loss: str = "mse") -> Task:
    """A regression task scored by MSE and MAE (lower is better)."""
    return Task(name, "regression", out_dim, loss, (MSE, MAE))


def classification(name: str, num_classes: int) -> Task:
    """A classification task with cross-entropy loss, scored by accuracy."""
    return Task(name, "classification", num_classes, "cross_entropy", (ACCURACY,))


class TaskSet(Mapping[str, Task]):
    """An ordered, name-indexed set of tasks. Unknown names raise a KeyError listing the known ones."""

    def __init__(self, tasks: Iterable[Task]):
        self._tasks: dict[str, Task] = {}
        for task in tasks:
            if not isinstance(task, Task):
                raise TypeError(f"TaskSet takes Task objects, got {type(task).__name__}")
            if task.name in self._tasks:
                raise ValueError(f"duplicate task name {task.name!r}")
            self._tasks[task.name] = task
        if not self._tasks:
            raise ValueError("a TaskSet needs at least one task")

    def __getitem__(self, name: str) -> Task:
        try:
            return self._tasks[name]
        except KeyError:
            raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(self._tasks)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def __repr__(self) -> str:
        return f"TaskSet({', '.join(self._tasks)})"

    @property
    def names(self) -> list[str]:
        return list(self._tasks)

    def index(self, name: str) -> int:
        self[name]
        return self.names.index(name)

    def subset(self, names: Iterable[str]) -> "TaskSet":
        """The tasks named, in the order given."""
        return TaskSet(self[n] for n in names)

    def check_targets(self, targets: Mapping[str, Tensor]) -> None:
        """Every task has a target and no target lacks a task."""
        missing = [n for n in self._tasks if n not in targets]
        extra = [n for n in targets if n not in self._tasks]
        if missing or extra:
            raise KeyError(f"targets do not match tasks: missing {missing}, unexpected {extra}; "
                           f"known tasks: {', '.join(self._tasks)}")

    def losses(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> Tensor:
        """The loss vector (T,) in task order."""
        self.check_targets(targets)
        return torch.stack([self[n].loss(outputs[n], targets[n]) for n in self._tasks])
