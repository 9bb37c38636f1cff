"""Task sampling schedules: which task's dataset feeds the next step (survey §3.3).

When every task comes with a dataset of its own, D_1, ..., D_T of sizes
n_1, ..., n_T, a training step draws one task i ~ p and one batch from D_i; the
shared trunk and task i's head take one optimiser step on L_i alone. The
schedule is the distribution p:

    uniform        p_i = 1 / T
    proportional   p_i = n_i / Σ_j n_j                 (every example is seen equally often)
    temperature    p_i ∝ n_i^{1/τ}                      (τ = 1: proportional; τ → ∞: uniform)
    annealed       p_i ∝ n_i^{α(e)},  α(e) = 1 − 0.8 (e − 1) / (E − 1),  epoch e = 1, ..., E

Proportional sampling starves small tasks; uniform sampling revisits a small
dataset until it is memorised. Temperature sampling sits between the two (τ = 2
is the "square-root" sampling of Stickland & Murray); annealed sampling starts
proportional and moves towards uniform as training goes on, so the small tasks
get more of the last epochs.

A. C. Stickland, I. Murray, "BERT and PALs: Projected Attention Layers for Efficient
Adaptation in Multi-Task Learning", ICML 2019, arXiv 1902.02671 (square-root and
annealed sampling). N. Arivazhagan et al., "Massively Multilingual Neural Machine
Translation in the Wild: Findings and Challenges", arXiv 1907.05019, 2019
(temperature sampling p_i ∝ n_i^{1/T}).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Sequence

import torch
from torch import Tensor

from .data.base import MultiTaskDataset
from .models.base import MultiTaskModel
from .train import StepResult, Trainer

SCHEDULES = ("uniform", "proportional", "temperature", "annealed")


class TaskSchedule:
    """A task-sampling distribution over tasks with dataset sizes ``sizes`` (task name -> n_i).

    ``temperature`` is τ of the temperature schedule; ``final_exponent`` is α at
    the last epoch of the annealed schedule (0.2 in Stickland & Murray: α falls
    from 1 to 0.2).
    """

    def __init__(self, sizes: Mapping[str, int], kind: str = "proportional", temperature: float = 2.0,
                 final_exponent: float = 0.2):
        if kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {kind!r}; known: {', '.join(SCHEDULES)}")
        if not sizes:
            raise ValueError("a schedule needs at least one task")
        for name, n in sizes.items():
            if int(n) != n or n < 1:
                raise ValueError(f"task {name!r}: dataset size must be a positive integer, got {n}")
        if not temperature > 0:
            raise ValueError(f"temperature τ must be positive, got {temperature}")
        self.sizes = {name: int(n) for name, n in sizes.items()}
        self.kind, self.temperature, self.final_exponent = kind, float(temperature), float(final_exponent)

    @property
    def names(self) -> list[str]:
        return list(self.sizes)

    def exponent(self, progress: float = 0.0) -> float:
        """α with p_i ∝ n_i^α at ``progress`` = (e − 1)/(E − 1) ∈ [0, 1] of training."""
        if not 0.0 <= progress <= 1.0:
            raise ValueError(f"progress must lie in [0, 1], got {progress}")
        if self.kind == "uniform":
            return 0.0
        if self.kind == "proportional":
            return 1.0
        if self.kind == "temperature":
            return 1.0 / self.temperature
        return 1.0 - (1.0 - self.final_exponent) * progress

    def probabilities(self, progress: float = 0.0) -> Tensor:
        """p (T,) in the order of ``sizes``, float64, summing to 1."""
        n = torch.tensor(list(self.sizes.values()), dtype=torch.float64)
        w = n ** self.exponent(progress)
        return w / w.sum()

    def sample(self, count: int, progress: float = 0.0, generator: torch.Generator | None = None) -> list[str]:
        """``count`` task names drawn independently from p at ``progress``."""
        idx = torch.multinomial(self.probabilities(progress), count, replacement=True, generator=generator)
        return [self.names[i] for i in idx.tolist()]

    def __repr__(self) -> str:
        extra = {"temperature": f", τ={self.temperature}", "annealed": f", α: 1 → {self.final_exponent}"}
        return f"TaskSchedule({self.kind}{extra.get(self.kind, '')}, sizes={self.sizes})"


def epoch_progress(step: int, steps: int, epochs: int) -> float:
    """(e − 1)/(E − 1) for the epoch e that step ``step`` (0-based) of ``steps`` falls in; 0 when E = 1."""
    if epochs < 1 or steps < 1 or not 0 <= step < steps:
        raise ValueError(f"need 0 <= step < steps and epochs >= 1, got step={step}, steps={steps}, epochs={epochs}")
    if epochs == 1:
        return 0.0
    return min(step * epochs // steps, epochs - 1) / (epochs - 1)


def split_by_task(data: MultiTaskDataset, sizes: Mapping[str, int], seed: int = 0) -> dict[str, MultiTaskDataset]:
    """One dataset per task, on disjoint random rows of ``data``: task name -> its own single-task set.

    Turns a dataset where every example is labelled for every task into the
    setting of this module, where task i only has its own n_i examples.
    """
    unknown = [n for n in sizes if n not in data.tasks]
    if unknown:
        raise KeyError(f"unknown task(s) {unknown}; the dataset has tasks {data.tasks.names}")
    if sum(sizes.values()) > len(data):
        raise ValueError(f"sizes {dict(sizes)} need {sum(sizes.values())} examples but the dataset has {len(data)}")
    parts = data.split(*sizes.values(), seed=seed)
    return {name: part.select_tasks([name]) for name, part in zip(sizes, parts)}


@dataclass
class ScheduleHistory:
    """Per step: the task drawn and its training loss; per epoch: the sampling probabilities."""

    tasks: list[str] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    probabilities: list[list[float]] = field(default_factory=list)

    def frequencies(self, names: Sequence[str]) -> Tensor:
        """(T,) fraction of the steps that drew each task, in the order of ``names``."""
        if not self.tasks:
            raise ValueError("no step has been taken yet")
        counts = torch.tensor([self.tasks.count(n) for n in names], dtype=torch.float64)
        return counts / len(self.tasks)


class ScheduledTrainer:
    """Train a multi-task model on per-task datasets, one task's batch per step, tasks drawn by a schedule.

    A :class:`~mtlkit.train.BatchSource` for :meth:`mtlkit.Trainer.run`: each epoch
    draws the tasks of its steps from the schedule, and each step is the Trainer's
    own step on the next batch of that task's dataset, so it trains L_i (with the
    model's auxiliary term for i and its ``regularizer()``, e.g. soft sharing) and
    gets the Trainer's checks: a NaN or infinite loss or gradient stops training
    before any parameter changes, naming the task. Only task i's head and the
    parameters it reaches change.
    """

    partial = True

    def __init__(self, model: MultiTaskModel, datasets: Mapping[str, MultiTaskDataset], schedule: TaskSchedule,
                 lr: float = 1e-3, batch_size: int = 32, optimizer: str = "adam", device=None, seed: int = 0):
        if sorted(datasets) != sorted(model.tasks.names) or sorted(schedule.sizes) != sorted(model.tasks.names):
            raise KeyError(f"datasets {sorted(datasets)} and schedule {sorted(schedule.sizes)} must name exactly "
                           f"the model's tasks {model.tasks.names}")
        for name, data in datasets.items():
            if name not in data.targets:
                raise KeyError(f"the dataset given for task {name!r} has no targets for it (it has {list(data.targets)})")
            if len(data) != schedule.sizes[name]:
                raise ValueError(f"task {name!r}: the schedule says {schedule.sizes[name]} examples but its dataset "
                                 f"has {len(data)}")
        self.trainer = Trainer(model, "equal", lr=lr, optimizer=optimizer, batch_size=batch_size, device=device,
                               seed=seed)
        self.model, self.schedule = self.trainer.model, schedule
        self.datasets = {n: d.to(self.trainer.device) for n, d in datasets.items()}
        self._streams = {n: d.stream(batch_size, self.trainer.generator) for n, d in self.datasets.items()}
        self.history = ScheduleHistory()
        self._plan: tuple[int, int] = (1, 1)   # (steps, epochs) of the current fit
        self._epoch = 0                         # the next epoch of that fit

    def epoch(self, trainer: Trainer) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
        """One epoch of single-task batches: tasks drawn from the schedule at this epoch's progress."""
        steps, epochs = self._plan
        e, self._epoch = self._epoch, self._epoch + 1
        progress = epoch_progress(e * steps // epochs, steps, epochs)
        self.history.probabilities.append(self.schedule.probabilities(progress).tolist())
        count = (e + 1) * steps // epochs - e * steps // epochs
        for task in self.schedule.sample(count, progress, trainer.generator):
            x, targets = next(self._streams[task])
            yield x, {task: targets[task]}

    def fit(self, steps: int, epochs: int = 1) -> ScheduleHistory:
        """``steps`` steps split into ``epochs`` equal epochs; the annealed schedule changes p per epoch."""
        if steps < epochs:
            raise ValueError(f"need at least one step per epoch, got steps={steps}, epochs={epochs}")
        self._plan, self._epoch = (steps, epochs), 0
        for result in itertools.islice(self.trainer.run(self), steps):
            self._record(result)
        return self.history

    def train_step(self, task: str) -> float:
        """One step of the Trainer on the next batch of ``task``'s dataset; returns its loss."""
        x, targets = next(self._streams[task])
        return self._record(self.trainer.train_step(x, {task: targets[task]}, [task]))

    def _record(self, result: StepResult) -> float:
        (task,) = result.tasks
        self.history.tasks.append(task)
        self.history.losses.append(float(result.losses[0]))
        return self.history.losses[-1]

    def evaluate(self, data: MultiTaskDataset) -> dict[str, dict[str, float]]:
        """task -> {"loss": ..., metric: ...} for every task ``data`` is labelled for (one task's own set, or all)."""
        unknown = [n for n in data.tasks if n not in self.model.tasks]
        if unknown:
            raise KeyError(f"the dataset has task(s) {unknown} the model does not predict; its tasks are "
                           f"{self.model.tasks.names}")
        return self.trainer.evaluate(data, tasks=list(data.tasks))


__all__ = ["SCHEDULES", "ScheduleHistory", "ScheduledTrainer", "TaskSchedule", "epoch_progress", "split_by_task"]
