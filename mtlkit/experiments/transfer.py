"""Positive and negative transfer: a shared model against separate networks, step by step.

The first experiment of the workbook (notebook 01). Two tasks from the MMoE
recipe (:func:`mtlkit.data.correlated_regression`) with weight correlation ρ are
learned by

* a hard-sharing MLP whose first ``split`` layers are shared, and
* the same MLP with ``split = 0``: separate networks, i.e. single-task learning,

trained side by side on the same batches with the same optimiser. The gain of
task i is its relative test-MSE improvement over the separate network,

    gain_i = (MSE_i^separate - MSE_i^shared) / MSE_i^separate × 100 %,

positive for positive transfer and negative for negative transfer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..config import seed_everything
from ..data.synthetic import correlated_regression
from ..metrics import relative_gain
from ..models.sharing import HardSharing
from ..tasks import TaskSet
from ..train import Trainer

Scores = dict[str, dict[str, float]]


@dataclass(frozen=True)
class TransferSetup:
    """The data and model sizes of the experiment (defaults chosen so both lessons show)."""

    n_train: int = 1000
    n_test: int = 2000
    dim: int = 20
    noise: float = 0.5
    widths: tuple[int, ...] = (32, 4)
    lr: float = 3e-3
    batch_size: int = 32


class SharingComparison:
    """Train a ``split``-shared model and separate networks side by side on the same batches."""

    def __init__(self, rho: float, split: int, seed: int = 0, setup: TransferSetup = TransferSetup(),
                 device: str | torch.device | None = None):
        if not 1 <= split <= len(setup.widths):
            raise ValueError(f"split must be between 1 and {len(setup.widths)} (0 is the separate baseline), "
                             f"got {split}")
        self.rho, self.split, self.seed, self.setup = rho, split, seed, setup
        data = correlated_regression(setup.n_train + setup.n_test, rho, dim=setup.dim, noise=setup.noise, seed=seed)
        self.train, self.test = data.split(setup.n_train, setup.n_test, seed=seed)
        self.tasks: TaskSet = data.tasks
        self.trainers = {"shared": self._trainer(split, device), "separate": self._trainer(0, device)}
        self._streams = {k: self.train.to(t.device).stream(setup.batch_size, t.generator)
                         for k, t in self.trainers.items()}

    def _trainer(self, split: int, device) -> Trainer:
        seed_everything(self.seed)
        model = HardSharing.mlp(self.tasks, self.setup.dim, self.setup.widths, split=split)
        return Trainer(model, "equal", lr=self.setup.lr, batch_size=self.setup.batch_size, seed=self.seed,
                       device=device)

    @property
    def step_count(self) -> int:
        return self.trainers["shared"].step_count

    def step(self) -> dict[str, torch.Tensor]:
        """One step of both models on the next batch; returns each model's (T,) training losses."""
        return {k: t.train_step(*next(self._streams[k])).losses for k, t in self.trainers.items()}

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()

    def evaluate(self) -> dict[str, Scores]:
        """Test scores of both models: {"shared": {task: {...}}, "separate": {...}}."""
        return {k: t.evaluate(self.test) for k, t in self.trainers.items()}

    def gains(self) -> dict[str, float]:
        """Per-task test-MSE gain (%) of the shared model over the separate networks."""
        scores = self.evaluate()
        return {n: relative_gain(scores["shared"][n]["mse"], scores["separate"][n]["mse"], higher_is_better=False,
                                 where=f"task {n!r}") for n in self.tasks}


def transfer_sweep(rhos: Sequence[float], split: int, steps: int, seeds: Sequence[int] = (0,),
                   setup: TransferSetup = TransferSetup(), device=None) -> dict[float, float]:
    """Mean gain over tasks and seeds for each ρ (positive: sharing helped)."""
    out = {}
    for rho in rhos:
        gains = []
        for seed in seeds:
            run = SharingComparison(rho, split, seed, setup, device)
            run.run(steps)
            gains.extend(run.gains().values())
        out[rho] = sum(gains) / len(gains)
    return out
