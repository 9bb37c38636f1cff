"""The experiments of notebook 07: how often tasks conflict, and whether an update's promise outlives its batch.

* :func:`conflict_by_correlation` trains the two-task regression of notebook 01
  (task correlation ρ) with equal weighting on several seeds and returns, per ρ
  and seed, the fraction of logged steps on which the two task gradients conflict
  (g_1 · g_2 < 0, measured by :class:`mtlkit.monitor.ConflictMonitor`).
* :class:`HeldOutConflict` rides along a gradient method's training run. Every
  ``every`` steps it compares the update d the method built from the batch's
  gradients G (rows g_i) with the gradients G' (rows g'_i) of an independent
  batch drawn from held-out data at the same parameters (taken at the end of the
  previous step, which is where this step starts). It records cos(d, g_i), where
  methods promise d · g_i ≥ 0 by construction, and cos(d, g'_i), which no
  construction settles; both also for equal weighting's update from the same
  batch, d_EW = Σ_i g_i, so the two are compared step by step on the same G and G'.

Lesson code: it builds on the core (data, Trainer, monitor); the core never imports it.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..data.base import MultiTaskDataset
from ..grads import task_gradients, update_cosines
from ..monitor import ConflictMonitor
from ..train import Callback, StepResult, Trainer
from .architectures import regression_split, train_architecture
from .transfer import TransferSetup


def conflict_by_correlation(rhos: Sequence[float], seeds: Sequence[int], steps: int, lr: float, every: int = 2,
                            probe_size: int = 128, setup: TransferSetup = TransferSetup(), device=None
                            ) -> dict[float, list[float]]:
    """ρ -> the conflict fraction of each seed (in the order of ``seeds``), equal weighting, hard sharing.

    Seed s draws the data (:func:`regression_split`), the initial model and the batches, so at one seed
    the runs for different ρ share the inputs and the initialisation. The gradients are measured every
    ``every`` steps on the first ``probe_size`` training examples.
    """
    out: dict[float, list[float]] = {rho: [] for rho in rhos}
    for seed in seeds:
        for rho in rhos:
            train, _ = regression_split(rho, seed=seed, setup=setup)
            monitor = ConflictMonitor(every=every, probe=train[torch.arange(probe_size)])
            train_architecture("hard", train, steps=steps, seed=seed, lr=lr, batch_size=setup.batch_size,
                               widths=setup.widths, device=device, callbacks=[monitor])
            out[rho].append(monitor.summary()["conflict_fraction"])
    return out


class HeldOutConflict(Callback):
    """cos(d, g_i) on the update's own batch and cos(d, g'_i) on an independent held-out batch (module docstring).

    ``held_out`` supplies the independent batches (``batch_size`` examples each, drawn with
    this callback's own generator seeded by ``seed``). Only gradient methods on the shared
    parameters hand over G and d; any other balancer raises a TypeError naming it.
    """

    def __init__(self, held_out: MultiTaskDataset, every: int = 2, batch_size: int = 32, seed: int = 0):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.held_out, self.every, self.batch_size = held_out, every, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self._stream = None
        self._pending: Tensor | None = None   # G' (T, P) for the next logged step
        self.steps: list[int] = []
        self.own: list[Tensor] = []        # (T,) cos(d, g_i), the batch d was built from
        self.held: list[Tensor] = []       # (T,) cos(d, g'_i), an independent batch
        self.own_ew: list[Tensor] = []     # (T,) the same for d_EW = Σ_i g_i
        self.held_ew: list[Tensor] = []

    def on_step(self, trainer: Trainer, result: StepResult) -> None:
        if result.step % self.every == 0 and self._pending is not None:
            self._record(trainer, result)
        # the held-out gradients at the parameters the next logged step starts from
        self._pending = self._held_out_gradients(trainer) if (result.step + 1) % self.every == 0 else None

    def _record(self, trainer: Trainer, result: StepResult) -> None:
        info = result.info
        if info.grads is None or info.direction is None or getattr(trainer.balancer, "on", None) != "params":
            raise TypeError(f"HeldOutConflict needs a gradient method on the shared parameters (it reads G and d "
                            f"from the step), got balancer {trainer.balancer.name!r}")
        G, d, G_held = info.grads.detach().double().cpu(), info.direction.detach().double().cpu(), self._pending
        self.steps.append(result.step)
        for store, grads, update in [(self.own, G, d), (self.held, G_held, d),
                                     (self.own_ew, G, G.sum(0)), (self.held_ew, G_held, G.sum(0))]:
            store.append(update_cosines(grads, update).float())

    def _held_out_gradients(self, trainer: Trainer) -> Tensor:
        if self._stream is None:
            self._stream = self.held_out.to(trainer.device).stream(self.batch_size, self.generator)
        x, targets = next(self._stream)
        losses, _ = trainer.losses(x, targets)
        return task_gradients(losses, trainer.model.shared_parameters(), retain_graph=False).double().cpu()

    def conflict_rate(self, which: str = "held", ew: bool = False) -> float:
        """Fraction of logged (step, task) pairs with cos(update, gradient) < 0.

        ``which``: "own" (the batch the update was built from) or "held" (the independent batch);
        ``ew=True``: for equal weighting's update on the same batch instead of the method's.
        """
        if which not in {"own", "held"}:
            raise ValueError(f"which must be 'own' or 'held', got {which!r}")
        rows = getattr(self, f"{which}_ew" if ew else which)
        if not rows:
            return float("nan")
        return float((torch.stack(rows) < 0).double().mean())


__all__ = ["HeldOutConflict", "conflict_by_correlation"]
