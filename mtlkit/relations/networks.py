"""Train a task grouping as a branched network and score it: the last step of task grouping (survey §4.1).

A grouping (a partition of the tasks) becomes a
:class:`~mtlkit.models.branched.BranchedNetwork`: one trunk per group, one head per
task. Trained and tested, it is compared with other groupings through Δm%
(:func:`mtlkit.metrics.delta_m`), usually against one network per task (the
single-task baselines, Δm = 0) and one network for all tasks (hard sharing):

    Δm(grouping) = (1/T) Σ_j −(L_j(grouping) − L_j(one per task)) / L_j(one per task) × 100

for tasks scored by losses (lower is better), positive when the grouping is better.

T. Standley et al., "Which Tasks Should Be Learned Together in Multi-task Learning?",
ICML 2020, arXiv 1905.07553 (§3: the chosen groups are trained as separate networks).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

from ..config import seed_everything
from ..data.base import MultiTaskDataset
from ..metrics import Scores
from ..models.branched import BranchedNetwork
from ..train import Trainer


@dataclass(frozen=True)
class GroupingFit:
    """A trained grouping: its groups (task names), test scores per task, parameter count and training time."""

    groups: tuple[tuple[str, ...], ...]
    scores: Scores
    parameters: int
    seconds: float


def one_per_task(names: Sequence[str]) -> list[tuple[str, ...]]:
    """The grouping of single-task learning: every task alone."""
    return [(n,) for n in names]


def fit_grouping(groups: Sequence[Sequence[str]], train: MultiTaskDataset, test: MultiTaskDataset, steps: int,
                 widths: Sequence[int] = (32, 4), lr: float = 1e-2, batch_size: int = 32, seed: int = 0,
                 device=None) -> GroupingFit:
    """Train a :class:`BranchedNetwork` MLP with one trunk per group on ``train``; score it on ``test``."""
    start = time.perf_counter()
    seed_everything(seed)
    model = BranchedNetwork.mlp(train.tasks, train.x.shape[1], groups, widths)
    trainer = Trainer(model, "equal", lr=lr, batch_size=batch_size, seed=seed, device=device)
    trainer.fit(train, steps=steps)
    return GroupingFit(tuple(model.groups), trainer.evaluate(test), sum(p.numel() for p in model.parameters()),
                       time.perf_counter() - start)


__all__ = ["GroupingFit", "fit_grouping", "one_per_task"]
