"""The experiments of notebooks 02 and 03: train registered architectures by name and look inside them.

* :func:`regression_split` and :func:`train_architecture` build the MMoE-recipe
  regression data (the setup of notebook 01, :class:`mtlkit.experiments.transfer.TransferSetup`)
  and train any vector architecture of ``MODELS`` on it;
* :func:`internals` names the few numbers an architecture learns about sharing
  (cross-stitch α, sluice β, gate usage, AdaShare's policy, split depths, the
  soft-sharing penalty), and :class:`Snapshots` records them while training;
* :func:`correlation_runs` trains configurations on the same data per ρ and seed and
  keeps every run (:class:`SweepRun`); :func:`correlation_sweep` averages their test MSE;
* :func:`gate_difference` measures how differently two tasks' gates mix the experts.

Lesson code: it builds on the core (models, data, Trainer); the core never imports it.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from itertools import combinations
from typing import Callable, Iterable, Sequence

import torch

from ..config import seed_everything
from ..data.base import MultiTaskDataset
from ..models import MODELS, build_architecture
from ..models.base import MultiTaskModel
from ..models.experts import GatedExperts
from ..train import Callback, StepResult, Trainer
from .transfer import TransferSetup


def regression_split(rho: float, seed: int = 0, setup: TransferSetup = TransferSetup()
                     ) -> tuple[MultiTaskDataset, MultiTaskDataset]:
    """Train and test sets of the two-task regression with weight correlation ρ (seeded)."""
    return setup.data(rho, seed)


def build(name: str, train: MultiTaskDataset, seed: int = 0, **model_kwargs) -> MultiTaskModel:
    """The architecture registered as ``name``, sized for ``train``'s inputs (seeded initialisation)."""
    seed_everything(seed)
    return build_architecture(name, train.tasks, train.x.shape[1:], **model_kwargs)


def train_architecture(name: str, train: MultiTaskDataset, steps: int, seed: int = 0, lr: float = 3e-3,
                       batch_size: int = 32, balancer: str = "equal", device=None,
                       callbacks: Iterable[Callback] = (), **model_kwargs) -> Trainer:
    """Build ``MODELS[name]`` for ``train`` and train it for ``steps`` steps; returns the Trainer."""
    model = build(name, train, seed, **model_kwargs)
    trainer = Trainer(model, balancer, lr=lr, batch_size=batch_size, seed=seed, device=device,
                      callbacks=callbacks)
    trainer.fit(train, steps=steps)
    return trainer


def describe(name: str) -> str:
    """The first line of the docstring of the architecture registered as ``name``."""
    make = MODELS[name].factory
    make = getattr(make, "func", make)  # functools.partial
    owner = getattr(make, "__self__", make)  # classmethod constructors: the class
    doc = inspect.getdoc(owner) or ""
    return doc.splitlines()[0] if doc else ""


def internals(model: MultiTaskModel) -> dict[str, float]:
    """Named numbers that say how much the tasks share in ``model`` ({} where it learns none)."""
    return model.sharing_summary()


class Snapshots(Callback):
    """Record ``read(model)`` (a dict of floats; default :func:`internals`) every ``every`` steps."""

    def __init__(self, every: int = 10, read: Callable[[MultiTaskModel], dict[str, float]] = internals):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every, self.read = every, read
        self.steps: list[int] = []
        self.values: dict[str, list[float]] = {}

    def on_step(self, trainer: Trainer, result: StepResult) -> None:
        if result.step % self.every:
            return
        self.steps.append(result.step)
        for key, value in self.read(trainer.model).items():
            self.values.setdefault(key, []).append(value)


def mean_test_mse(trainer: Trainer, test: MultiTaskDataset) -> float:
    """Test MSE averaged over the tasks."""
    scores = trainer.evaluate(test)
    return sum(scores[n]["mse"] for n in test.tasks) / len(test.tasks)


@dataclass
class SweepRun:
    """One configuration trained on one (ρ, seed): its trainer and the test set it is scored on."""

    trainer: Trainer
    test: MultiTaskDataset

    @property
    def mse(self) -> float:
        """Test MSE averaged over the tasks."""
        return mean_test_mse(self.trainer, self.test)


def correlation_runs(configs: dict[str, dict], rhos: Sequence[float], steps: int, seeds: Sequence[int] = (0,),
                     setup: TransferSetup = TransferSetup(), device=None) -> dict[str, dict[float, list[SweepRun]]]:
    """Every configuration trained for each ρ and seed: ``{label: {ρ: [run of seed 1, ...]}}``.

    ``configs`` maps a label to ``train_architecture`` keyword arguments, e.g.
    ``{"MMoE": {"name": "mmoe", "num_experts": 4}}``; every configuration sees the same data per
    seed, and ``setup``'s learning rate and batch size unless a configuration names its own.
    """
    out: dict[str, dict[float, list[SweepRun]]] = {label: {rho: [] for rho in rhos} for label in configs}
    for rho in rhos:
        for seed in seeds:
            train, test = regression_split(rho, seed, setup)
            for label, kwargs in configs.items():
                kwargs = {"lr": setup.lr, "batch_size": setup.batch_size, **kwargs}
                trainer = train_architecture(train=train, steps=steps, seed=seed, device=device, **kwargs)
                out[label][rho].append(SweepRun(trainer, test))
    return out


def correlation_sweep(configs: dict[str, dict], rhos: Sequence[float], steps: int, seeds: Sequence[int] = (0,),
                      setup: TransferSetup = TransferSetup(), device=None) -> dict[str, dict[float, float]]:
    """Mean test MSE (over tasks and seeds) per configuration and ρ (see :func:`correlation_runs`)."""
    runs = correlation_runs(configs, rhos, steps, seeds, setup, device)
    return {label: {rho: sum(r.mse for r in rs) / len(rs) for rho, rs in by_rho.items()}
            for label, by_rho in runs.items()}


@torch.no_grad()
def gate_difference(model: GatedExperts, x: torch.Tensor) -> float:
    """How differently the tasks' gates mix the experts on inputs ``x``, between 0 and 1.

    The total-variation distance ½ Σ_e |g_s(x)_e − g_t(x)_e| between two tasks' gate
    weights, averaged over the examples of ``x`` and over pairs of tasks: 0 when every
    task reads the same mixture of experts, 1 when no two tasks share any expert.
    """
    if not isinstance(model, GatedExperts):
        raise TypeError(f"gate_difference needs a model with gates (MMoE, CGC, PLE), got {type(model).__name__}")
    if len(model.tasks) < 2:
        raise ValueError("gate_difference needs at least two tasks")
    was_training = model.training
    model.eval()
    model(x.to(next(model.parameters()).device))
    model.train(was_training)
    gates = [model.last_gates[n] for n in model.tasks]  # each (B, E)
    pairs = [0.5 * (a - b).abs().sum(1).mean() for a, b in combinations(gates, 2)]
    return float(torch.stack(pairs).mean())


__all__ = ["Snapshots", "SweepRun", "build", "correlation_runs", "correlation_sweep", "describe", "gate_difference",
           "internals", "mean_test_mse", "regression_split", "train_architecture"]
