"""One small training loop for every model and balancer, with callbacks.

Data flows one way: batch -> model -> per-task losses -> balancer (fills .grad)
-> the model's task-independent ``regularizer()``, if any, adds its gradient
-> optimizer step -> callbacks. Each step checks the losses and gradients before
the optimizer touches a parameter, so a NaN never spreads silently.

There is one loop: :meth:`Trainer.run` yields one :class:`StepResult` per step,
epoch after epoch, over a :class:`~mtlkit.data.MultiTaskDataset` or any other
source of batches (a task schedule: :mod:`mtlkit.schedule`). :meth:`Trainer.fit`,
the scheduled trainer, the live panels and the notebooks' experiments all consume
it, so every one of them gets the same checks, callbacks and history.

Reproducibility: call :func:`mtlkit.seed_everything` before building the model
(its initialisation is random), then give the Trainer a seed: it seeds the
global generators again (for randomised balancers) and owns the batch order.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Protocol, Sequence

import torch
from torch import Tensor

from .balancers import Balancer, StepInfo, make_balancer
from .config import default_device, seed_everything
from .data.base import MultiTaskDataset
from .grads import NonFiniteError, check_finite_gradients, check_finite_losses, task_gradients
from .tasks import TaskSet
from .models.base import MTLOutput, MultiTaskModel

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD,
                                                        "adamw": torch.optim.AdamW}


@dataclass
class StepResult:
    step: int
    losses: Tensor  # (k,) detached, on CPU: every task's, or those of the batch's tasks
    info: StepInfo
    tasks: tuple[str, ...] = ()  # the tasks of ``losses``
    epoch_end: bool = False      # the last step of an epoch (run() has already ended the epoch)


Batch = tuple[Tensor, Mapping[str, Tensor]]


class BatchSource(Protocol):
    """Where :meth:`Trainer.run` takes its batches from, one epoch at a time.

    A :class:`~mtlkit.data.MultiTaskDataset` is one (shuffled batches labelled for
    every task). A source whose batches are labelled for some tasks only (task
    scheduling) sets ``partial = True``: each step then trains on the tasks its
    batch has targets for.
    """

    partial: bool

    def epoch(self, trainer: "Trainer") -> Iterable[Batch]: ...


class Callback:
    """Override what you need; the Trainer calls these after each step and each epoch."""

    def on_step(self, trainer: "Trainer", result: StepResult) -> None: ...

    def on_epoch_end(self, trainer: "Trainer", epoch: int, logs: dict) -> None: ...


class Trainer:
    """Trains a :class:`MultiTaskModel` with a balancer; see the module docstring."""

    def __init__(self, model: MultiTaskModel, balancer: str | Balancer = "equal", lr: float = 1e-3,
                 optimizer: str = "adam", weight_decay: float = 0.0, batch_size: int = 64,
                 device: str | torch.device | None = None, seed: int = 0, callbacks: Iterable[Callback] = ()):
        if not isinstance(model, MultiTaskModel):
            raise TypeError(f"model must be a MultiTaskModel, got {type(model).__name__}")
        if optimizer not in OPTIMIZERS:
            raise KeyError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}")
        if not lr > 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        self.device = torch.device(device) if device is not None else default_device()
        self.model = model.to(self.device)
        self.tasks = model.tasks
        self.batch_size = batch_size
        self.callbacks = list(callbacks)
        self.generator = seed_everything(seed)
        # foreach: one fused call per step for all tensors (PyTorch's default on CUDA; on the CPU it
        # cuts a small model's step time by about a third)
        self.optimizer = OPTIMIZERS[optimizer](model.parameters(), lr=lr, weight_decay=weight_decay, foreach=True)
        self.balancer = self._attach(make_balancer(balancer))
        self.step_count = 0
        self.epoch = 0
        self.history: dict[str, list] = {"loss": [], "weights": [], "epoch_loss": [], "val": []}
        self._stop = False
        self._epoch_totals: Tensor | None = None   # per-task loss sums and example counts of the open epoch
        self._epoch_count: Tensor | None = None

    # -- balancer -----------------------------------------------------------
    def _attach(self, balancer: Balancer) -> Balancer:
        balancer = balancer.to(self.device)
        balancer.setup(len(self.tasks), list(self.tasks))
        params = [p for p in balancer.parameters() if p.requires_grad]
        if params:
            self.optimizer.add_param_group({"params": params, "weight_decay": 0.0})
        return balancer

    def set_balancer(self, balancer: str | Balancer, **kwargs) -> None:
        """Switch the balancer between steps (the live panel's dropdown)."""
        old = {id(p) for p in self.balancer.parameters()}
        self.optimizer.param_groups[:] = [g for g in self.optimizer.param_groups
                                          if not any(id(p) in old for p in g["params"])]
        self.balancer = self._attach(make_balancer(balancer, **kwargs))

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"learning rate must be positive, got {value}")
        for group in self.optimizer.param_groups:
            group["lr"] = value

    # -- one step -----------------------------------------------------------
    def losses(self, x: Tensor, targets: Mapping[str, Tensor], tasks: Sequence[str] | None = None
               ) -> tuple[Tensor, MTLOutput]:
        """The loss vector and the model output on one batch (:meth:`MultiTaskModel.loss_vector`)."""
        return self.model.loss_vector(x, targets, tasks)

    def train_step(self, x: Tensor, targets: Mapping[str, Tensor], tasks: Sequence[str] | None = None
                   ) -> StepResult:
        """One optimisation step on one batch; raises NonFiniteError before any update on NaN/inf.

        ``tasks``: train on these tasks only (a batch labelled for some tasks, as in
        task scheduling); by default on every task, and ``targets`` must hold them all.
        """
        if not self.model.training:
            self.model.train()
        names = self.tasks.subset(tasks) if tasks is not None else self.tasks
        self.optimizer.zero_grad(set_to_none=True)
        losses, output = self.losses(x, targets, tasks)
        check_finite_losses(losses, names, self.step_count)
        info = self.balancer.backward(losses, self.model, output)
        penalty = self.model.regularizer()
        if penalty is not None:  # task-independent (soft sharing, AdaShare): its gradient adds to the update
            penalty.backward()
        self._check_gradients(x, targets, tasks, names)
        self.optimizer.step()
        self.step_count += 1
        self.balancer.after_step(lambda: self._losses_no_grad(x, targets, tasks))
        result = StepResult(self.step_count, losses.detach().cpu(), info, tuple(names))
        self.history["loss"].append(result.losses.tolist())
        self.history["weights"].append(info.weights.cpu().tolist() if info.weights is not None else None)
        for cb in self.callbacks:
            cb.on_step(self, result)
        return result

    def _losses_no_grad(self, x: Tensor, targets: Mapping[str, Tensor], tasks: Sequence[str] | None) -> Tensor:
        with torch.no_grad():
            return self.losses(x, targets, tasks)[0]

    def _check_gradients(self, x: Tensor, targets: Mapping[str, Tensor], tasks: Sequence[str] | None,
                         names: TaskSet) -> None:
        grads = [p.grad for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        if not grads or bool(torch.cat([g.reshape(-1) for g in grads]).isfinite().all()):
            return
        self.optimizer.zero_grad(set_to_none=True)
        losses, _ = self.losses(x, targets, tasks)
        params = [p for p in self.model.parameters() if p.requires_grad]
        check_finite_gradients(task_gradients(losses, params, retain_graph=True), names, "model parameters")
        raise NonFiniteError(f"balancer {self.balancer.name!r} produced a non-finite gradient from finite "
                             "task gradients; no parameter was updated")

    # -- the loop -----------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`fit` to stop after the current step (from a callback or another thread)."""
        self._stop = True

    def run(self, source: MultiTaskDataset | BatchSource, val: MultiTaskDataset | None = None
            ) -> Iterator[StepResult]:
        """The training loop: one :class:`StepResult` per step, epoch after epoch, for as long as it is asked.

        ``source`` is a dataset (its shuffled batches, in this trainer's seeded order)
        or any :class:`BatchSource`. After an epoch's last step the epoch ends (its
        mean training losses, ``val`` scores, the balancer's and the callbacks'
        epoch hooks) before that step is yielded, marked ``epoch_end``. A consumer
        that stops mid-epoch calls :meth:`end_epoch` to close the partial epoch.
        """
        if isinstance(source, MultiTaskDataset):
            source = _DatasetSource(source.to(self.device), self.tasks)
        while True:
            batches = iter(source.epoch(self))
            batch = next(batches, None)
            if batch is None:
                raise ValueError("the batch source gave an empty epoch")
            while batch is not None:
                x, targets = batch
                result = self.train_step(x, targets, list(n for n in self.tasks if n in targets)
                                         if source.partial else None)
                self._accumulate(result, len(x))
                batch = next(batches, None)
                if batch is None:
                    self.end_epoch(val)
                    result.epoch_end = True
                yield result

    def _accumulate(self, result: StepResult, n: int) -> None:
        if self._epoch_totals is None:
            self._epoch_totals = torch.zeros(len(self.tasks))
            self._epoch_count = torch.zeros(len(self.tasks))
        index = [self.tasks.index(t) for t in result.tasks]
        self._epoch_totals[index] += result.losses * n
        self._epoch_count[index] += n

    def end_epoch(self, val: MultiTaskDataset | None = None) -> None:
        """Close the current epoch (also a partial one): history, ``val`` scores, balancer and callback hooks."""
        if self._epoch_totals is None:
            return
        epoch_losses = self._epoch_totals / self._epoch_count.clamp_min(1)
        self._epoch_totals = self._epoch_count = None
        self.epoch += 1
        scores = self.evaluate(val) if val is not None else None
        self.history["epoch_loss"].append(epoch_losses.tolist())
        self.history["val"].append(scores)
        self.balancer.end_epoch(epoch_losses, scores)
        for cb in self.callbacks:
            cb.on_epoch_end(self, self.epoch, {"loss": epoch_losses, "val": scores})

    def fit(self, data: MultiTaskDataset | BatchSource, epochs: int | None = None, steps: int | None = None,
            val: MultiTaskDataset | None = None, progress: bool = False) -> dict[str, list]:
        """Train for ``epochs`` epochs or ``steps`` steps (whichever is given) of :meth:`run`; returns the history."""
        if (epochs is None) == (steps is None):
            raise ValueError("give exactly one of epochs or steps")
        if isinstance(data, MultiTaskDataset):
            self.tasks.check_targets(data.targets)
        bar = _progress(epochs if epochs is not None else steps, progress)
        self._stop = False
        done_steps = done_epochs = 0
        # no name kept for a step's result past its iteration: its G (T x P) is freed before the next step builds one
        for result in self.run(data, val):
            done_steps += 1
            done_epochs += result.epoch_end
            bar.update(1 if steps is not None else int(result.epoch_end))
            if epochs is not None and done_epochs == epochs:
                break
            if self._stop or (steps is not None and done_steps >= steps):
                self.end_epoch(val)
                break
        bar.close()
        return self.history

    @torch.no_grad()
    def predict(self, data: MultiTaskDataset, batch_size: int = 2048) -> dict[str, Tensor]:
        """Per-task outputs over the whole dataset, in order."""
        self.model.eval()
        outs: dict[str, list[Tensor]] = {n: [] for n in self.tasks}
        data = data.to(self.device)
        for x, _ in data.batches(batch_size, shuffle=False):
            for n, o in self.model(x).outputs.items():
                outs[n].append(o)
        return {n: torch.cat(o) for n, o in outs.items()}

    def evaluate(self, data: MultiTaskDataset, batch_size: int = 2048,
                 tasks: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
        """task -> {"loss": ..., metric: ...} over the whole dataset, for ``tasks`` (default: every model task)."""
        preds = self.predict(data, batch_size)
        targets = data.to(self.device).targets
        return {n: {"loss": float(self.tasks[n].loss(preds[n], targets[n])),
                    **self.tasks[n].evaluate(preds[n], targets[n])} for n in (self.tasks if tasks is None else tasks)}

    # -- checkpoints ----------------------------------------------------------
    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "balancer": self.balancer.state_dict(),
                "balancer_name": self.balancer.name, "optimizer": self.optimizer.state_dict(),
                "step": self.step_count, "epoch": self.epoch, "history": self.history,
                "generator": self.generator.get_state()}

    def save(self, path: str | Path) -> None:
        """Save a checkpoint that loads with ``torch.load(path, weights_only=True)``."""
        torch.save(self.state_dict(), path)

    def load(self, path: str | Path) -> None:
        """Restore a checkpoint written by :meth:`save` (same model and balancer type)."""
        state = torch.load(path, map_location=self.device, weights_only=True)
        if state["balancer_name"] != self.balancer.name:
            raise ValueError(f"checkpoint was trained with balancer {state['balancer_name']!r}, "
                             f"this trainer uses {self.balancer.name!r}")
        self.model.load_state_dict(state["model"])
        self.balancer.load_state_dict(state["balancer"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step_count, self.epoch, self.history = state["step"], state["epoch"], state["history"]
        self.generator.set_state(state["generator"].cpu())


class _DatasetSource:
    """A dataset as a batch source: one epoch = its batches in the trainer's seeded, shuffled order."""

    partial = False

    def __init__(self, data: MultiTaskDataset, tasks: TaskSet):
        tasks.check_targets(data.targets)
        self.data = data

    def epoch(self, trainer: "Trainer") -> Iterator[Batch]:
        return self.data.batches(trainer.batch_size, trainer.generator)


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, disable=not enabled, leave=False)


def fit_single_task_baselines(make_model: Callable[[object], MultiTaskModel], data: MultiTaskDataset,
                              test: MultiTaskDataset, seed: int = 0, **fit_kwargs) -> dict[str, dict[str, float]]:
    """Train one model per task on that task alone; return each task's test scores.

    ``make_model(tasks)`` builds a model for a TaskSet; ``fit_kwargs`` go to
    :class:`Trainer` (lr, batch_size, ...) and :meth:`Trainer.fit` (epochs or steps).
    """
    loop_keys = {"epochs", "steps", "progress"}
    loop = {k: v for k, v in fit_kwargs.items() if k in loop_keys}
    setup = {k: v for k, v in fit_kwargs.items() if k not in loop_keys}
    scores = {}
    for name in data.tasks:
        seed_everything(seed)
        one = data.select_tasks([name])
        trainer = Trainer(make_model(one.tasks), seed=seed, **setup)
        trainer.fit(one, **loop)
        scores[name] = trainer.evaluate(test.select_tasks([name]))[name]
    return scores


__all__ = ["BatchSource", "Callback", "OPTIMIZERS", "StepResult", "Trainer", "fit_single_task_baselines"]
