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

Both tasks are labelled on the same inputs, each label with its own noise. At
ρ = 1 a shared trunk therefore learns from two independent noisy labels of one
function, which averages their noise ("statistical data amplification", Caruana
1997, §3.1); the effect is large when each task has few examples and a network
of its own would fit its noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..config import seed_everything
from ..data.synthetic import correlated_regression
from ..metrics import relative_gain
from ..models.sharing import BodyFactory, HardSharing, linear_head, mlp_body
from ..tasks import TaskSet
from ..train import Trainer

Scores = dict[str, dict[str, float]]


@dataclass(frozen=True)
class TransferSetup:
    """The data and model sizes of an experiment on the two-task regression.

    The defaults are the recipe the later notebooks (02-09) train on. Notebook 01
    gives each task fewer, noisier examples (``n_train``, ``noise``, ``scale``) and a
    one-unit linear bottleneck (``widths=(32, 1)``, ``linear_bottleneck=True``), so
    that both transfer lessons stand out from the run-to-run noise.

    ``scale`` is the norm of each task's weight vector w_t (the signal's size) and
    ``num_sines`` the number m of sines in each label (how wiggly the function is);
    ``linear_bottleneck`` leaves the last hidden layer without its ReLU, so a narrow
    bottleneck cannot die (a dead ReLU unit makes a network predict a constant).
    """

    n_train: int = 1000
    n_test: int = 2000
    dim: int = 20
    noise: float = 0.5
    widths: tuple[int, ...] = (32, 4)
    lr: float = 3e-3
    batch_size: int = 32
    scale: float = 1.0
    num_sines: int = 10
    linear_bottleneck: bool = False

    def body(self) -> BodyFactory:
        """The MLP's layers: Linear + ReLU per width (the last without ReLU if ``linear_bottleneck``)."""
        if not self.linear_bottleneck:
            return mlp_body(self.dim, self.widths)
        hidden = mlp_body(self.dim, self.widths[:-1])
        last_in = self.widths[-2] if len(self.widths) > 1 else self.dim
        return lambda: [*hidden(), nn.Linear(last_in, self.widths[-1])]

    def model(self, tasks: TaskSet, split: int) -> HardSharing:
        """The hard-sharing MLP with its first ``split`` layers shared (0: separate networks)."""
        return HardSharing(tasks, self.body(), linear_head(self.widths[-1]), split, (self.dim,))

    def data(self, rho: float, seed: int = 0, num_tasks: int = 2):
        """Train and test sets of the regression tasks "t1".."tT" with weight correlation ρ (seeded)."""
        data = correlated_regression(self.n_train + self.n_test, rho, dim=self.dim, num_tasks=num_tasks,
                                     noise=self.noise, scale=self.scale, num_sines=self.num_sines, seed=seed)
        return data.split(self.n_train, self.n_test, seed=seed)


class SharingComparison:
    """Train a ``split``-shared model and separate networks side by side on the same batches."""

    def __init__(self, rho: float, split: int, seed: int = 0, setup: TransferSetup = TransferSetup(),
                 device: str | torch.device | None = None):
        if not 1 <= split <= len(setup.widths):
            raise ValueError(f"split must be between 1 and {len(setup.widths)} (0 is the separate baseline), "
                             f"got {split}")
        self.rho, self.split, self.seed, self.setup = rho, split, seed, setup
        self.train, self.test = setup.data(rho, seed)
        self.tasks: TaskSet = self.train.tasks
        self.trainers = {"shared": self._trainer(split, device), "separate": self._trainer(0, device)}
        # each model runs the Trainer's one loop; the same seed gives both the same batches
        self._steps = {k: t.run(self.train) for k, t in self.trainers.items()}

    def _trainer(self, split: int, device) -> Trainer:
        seed_everything(self.seed)
        model = self.setup.model(self.tasks, split)
        return Trainer(model, "equal", lr=self.setup.lr, batch_size=self.setup.batch_size, seed=self.seed,
                       device=device)

    @property
    def step_count(self) -> int:
        return self.trainers["shared"].step_count

    def step(self) -> dict[str, torch.Tensor]:
        """One step of both models on the next batch; returns each model's (T,) training losses."""
        return {k: next(steps).losses for k, steps in self._steps.items()}

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


def transfer_gains(rhos: Sequence[float], split: int, steps: int, seeds: Sequence[int] = (0,),
                   setup: TransferSetup = TransferSetup(), device=None) -> dict[float, list[float]]:
    """Gain (%) of sharing, averaged over the tasks, for each ρ and seed: {ρ: [gain of seed 1, ...]}."""
    out: dict[float, list[float]] = {}
    for rho in rhos:
        out[rho] = []
        for seed in seeds:
            run = SharingComparison(rho, split, seed, setup, device)
            run.run(steps)
            gains = run.gains()
            out[rho].append(sum(gains.values()) / len(gains))
    return out


def transfer_sweep(rhos: Sequence[float], split: int, steps: int, seeds: Sequence[int] = (0,),
                   setup: TransferSetup = TransferSetup(), device=None) -> dict[float, float]:
    """Mean gain over tasks and seeds for each ρ (positive: sharing helped)."""
    return {rho: sum(g) / len(g) for rho, g in transfer_gains(rhos, split, steps, seeds, setup, device).items()}
