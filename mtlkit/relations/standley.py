"""Standley et al.: train groups of tasks, measure each task's gain, estimate larger groups from pairs.

Train every task alone and every pair together (T + T(T−1)/2 networks), and score
each task j in each group g by its relative test-loss gain over its own network,

    s_j(g) = (L_j({j}) − L_j(g)) / L_j({j})        (> 0: g helps j; s_j({j}) = 0)

The pair gains form an affinity matrix S[i, j] = s_j({i, j}) (row: the partner,
column: the task that gains). A larger group need not be trained: its
*higher-order estimate* averages the pairs it contains,

    L̂_j(g) = (1 / (|g| − 1)) Σ_{i ∈ g, i ≠ j} L_j({i, j})

and groups that were trained use their measured losses. Choosing the groups then
maximises Σ_j max_{g ∋ j} s_j(g) under the budget of k networks
(:mod:`mtlkit.relations.grouping`).

The compute budget counts trainings: :func:`train_groups` refuses, before training
anything, a list of groups longer than ``budget``.

T. Standley, A. Zamir, D. Chen, L. Guibas, J. Malik, S. Savarese, "Which Tasks Should
Be Learned Together in Multi-task Learning?", ICML 2020, arXiv 1905.07553.
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor

from ..config import seed_everything
from ..data.base import MultiTaskDataset
from ..models.sharing import HardSharing
from ..train import Trainer
from .base import Affinity
from .grouping import BudgetError, ValueFn

#: fit(task names) -> {task name: {"loss": test loss, metric: value, ...}} for a network trained on those tasks.
GroupFit = Callable[[tuple[str, ...]], Mapping[str, Mapping[str, float]]]


def groups_up_to(num_tasks: int, order: int = 2) -> list[tuple[int, ...]]:
    """Every group of 1..``order`` tasks: singles, then pairs (then triples, ...)."""
    if not 1 <= order <= num_tasks:
        raise ValueError(f"order must be between 1 and the number of tasks {num_tasks}, got {order}")
    return [g for r in range(1, order + 1) for g in itertools.combinations(range(num_tasks), r)]


def trainings_needed(num_tasks: int, order: int = 2) -> int:
    """Σ_{r ≤ order} C(T, r): trainings to measure every group up to ``order`` tasks."""
    return sum(math.comb(num_tasks, r) for r in range(1, order + 1))


@dataclass
class GroupRuns:
    """Test scores of trained groups: ``scores[g][j]`` is task j's {"loss": ..., metric: ...} in group g's network."""

    tasks: tuple[str, ...]
    scores: dict[tuple[int, ...], dict[int, dict[str, float]]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def losses(self) -> dict[tuple[int, ...], dict[int, float]]:
        """``losses[g][j]``: task j's test loss in the network trained on group g."""
        return {g: {j: s["loss"] for j, s in row.items()} for g, row in self.scores.items()}

    def single_task_scores(self) -> dict[str, dict[str, float]]:
        """Each task's scores alone: the single-task baselines of Δm%."""
        return {self.tasks[j]: dict(self.scores[(j,)][j]) for j in range(len(self.tasks)) if (j,) in self.scores}

    @property
    def runs(self) -> int:
        return len(self.scores)

    def single(self, j: int) -> float:
        if (j,) not in self.scores:
            raise KeyError(f"task {self.tasks[j]!r} was never trained alone; its single-task loss is the baseline")
        return self.scores[(j,)][j]["loss"]

    def loss(self, group: Sequence[int]) -> dict[int, float]:
        """Each member's loss in ``group``: measured when trained, else the higher-order estimate from pairs."""
        g = tuple(sorted(group))
        if g in self.scores:
            return {j: self.scores[g][j]["loss"] for j in g}
        missing = [(i, j) for i, j in itertools.combinations(g, 2) if (i, j) not in self.scores]
        if missing:
            names = [f"({self.tasks[i]}, {self.tasks[j]})" for i, j in missing]
            raise KeyError(f"cannot estimate group {[self.tasks[j] for j in g]}: pairs {', '.join(names)} "
                           "were not trained")
        return {j: sum(self.scores[tuple(sorted((i, j)))][j]["loss"] for i in g if i != j) / (len(g) - 1)
                for j in g}

    def gains(self, group: Sequence[int]) -> list[float]:
        """s_j(g) for each member j of ``group`` (sorted order)."""
        g = tuple(sorted(group))
        loss = self.loss(g)
        return [(self.single(j) - loss[j]) / self.single(j) for j in g]

    def values(self) -> ValueFn:
        """v_j(g) = s_j(g), for :func:`mtlkit.relations.grouping.select_groups`."""
        return lambda group: self.gains(group)

    def pair_gains(self) -> Tensor:
        """S (T, T): S[i, j] = s_j({i, j}), the gain of task j from training with task i; 0 on the diagonal."""
        T = len(self.tasks)
        S = torch.zeros(T, T)
        for i, j in itertools.permutations(range(T), 2):
            S[i, j] = self.gains((i, j))[sorted((i, j)).index(j)]
        return S

    def affinity(self) -> Affinity:
        return Affinity("standley", self.tasks, self.pair_gains(), self.runs, self.seconds)


def train_groups(fit: GroupFit, tasks: Sequence[str], groups: Iterable[Sequence[int]] | None = None,
                 budget: int | None = None, runs: GroupRuns | None = None) -> GroupRuns:
    """Train one network per group (default: every single and every pair) and record its test losses.

    ``budget`` is how many trainings are allowed; a list of groups longer than the
    budget raises :class:`BudgetError` before anything is trained. Groups already in
    ``runs`` are not trained again (and cost nothing).
    """
    tasks = tuple(tasks)
    groups = groups_up_to(len(tasks), 2) if groups is None else [tuple(sorted(set(g))) for g in groups]
    runs = GroupRuns(tasks) if runs is None else runs
    todo = list(dict.fromkeys(g for g in groups if g not in runs.scores))
    for g in todo:
        if not g or g[0] < 0 or g[-1] >= len(tasks):
            raise ValueError(f"group {g} must be a non-empty set of task indices in 0..{len(tasks) - 1}")
    if budget is not None and len(todo) > budget:
        raise BudgetError(f"training these groups needs {len(todo)} trainings ({sum(len(g) == 1 for g in todo)} "
                          f"single-task, {sum(len(g) == 2 for g in todo)} pairs, {sum(len(g) > 2 for g in todo)} "
                          f"larger) but the budget allows {budget}; lower the order, use fewer tasks, "
                          "or use a one-run method (TAG, gradient cosine)")
    for g in todo:
        start = time.perf_counter()
        names = tuple(tasks[j] for j in g)
        scores = fit(names)
        missing = [n for n in names if n not in scores or "loss" not in scores[n]]
        if missing:
            raise KeyError(f"the fit for group {names} returned no 'loss' score for tasks {missing}")
        runs.scores[g] = {j: {m: float(v) for m, v in scores[tasks[j]].items()} for j in g}
        runs.seconds += time.perf_counter() - start
    return runs


def group_fitter(train: MultiTaskDataset, test: MultiTaskDataset, steps: int, widths: Sequence[int] = (32, 2),
                 lr: float = 3e-3, batch_size: int = 32, seed: int = 0, device=None) -> GroupFit:
    """A :data:`GroupFit` training a hard-sharing MLP (every hidden layer shared) on the named tasks."""
    def fit(names: tuple[str, ...]) -> dict[str, dict[str, float]]:
        part = train.select_tasks(names)
        seed_everything(seed)
        model = HardSharing.mlp(part.tasks, train.x.shape[1], widths)
        trainer = Trainer(model, "equal", lr=lr, batch_size=batch_size, seed=seed, device=device)
        trainer.fit(part, steps=steps)
        return trainer.evaluate(test.select_tasks(names))
    return fit


__all__ = ["GroupFit", "GroupRuns", "group_fitter", "groups_up_to", "train_groups", "trainings_needed"]
