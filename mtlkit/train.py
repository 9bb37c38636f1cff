"""One small training loop for every model and balancer, with callbacks.

Data flows one way: batch -> model -> per-task losses -> balancer (fills .grad)
-> the model's task-independent ``regularizer()``, if any, adds its gradient
-> optimizer step -> callbacks. Each step checks the losses and gradients before
the optimizer touches a parameter, so a NaN never spreads silently.

Reproducibility: call :func:`mtlkit.seed_everything` before building the model
(its initialisation is random), then give the Trainer a seed: it seeds the
global generators again (for randomised balancers) and owns the batch order.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor

from .balancers import Balancer, StepInfo, make_balancer
from .config import default_device, seed_everything
from .data.base import MultiTaskDataset
from .grads import NonFiniteError, check_finite_gradients, check_finite_losses, task_gradients
from .models.base import MTLOutput, MultiTaskModel

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD,
                                                        "adamw": torch.optim.AdamW}


@dataclass
class StepResult:
    step: int
    losses: Tensor  # (T,) detached, on CPU
    info: StepInfo


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
    def losses(self, x: Tensor, targets: Mapping[str, Tensor]) -> tuple[Tensor, MTLOutput]:
        """The (T,) loss vector and the model output on one batch.

        Task t's loss includes the model's auxiliary term for t, if any (``MultiTaskModel.auxiliary_losses``).
        """
        output = self.model(x)
        if not isinstance(output, MTLOutput):
            raise TypeError(f"{type(self.model).__name__}.forward must return an MTLOutput, "
                            f"got {type(output).__name__}")
        losses = self.tasks.losses(output.outputs, targets)
        aux = self.model.auxiliary_losses(targets)
        return (losses if aux is None else losses + aux), output

    def train_step(self, x: Tensor, targets: Mapping[str, Tensor]) -> StepResult:
        """One optimisation step on one batch; raises NonFiniteError before any update on NaN/inf."""
        if not self.model.training:
            self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        losses, output = self.losses(x, targets)
        check_finite_losses(losses, self.tasks, self.step_count)
        info = self.balancer.backward(losses, self.model, output)
        penalty = self.model.regularizer()
        if penalty is not None:  # task-independent (soft sharing, AdaShare): its gradient adds to the update
            penalty.backward()
        self._check_gradients(x, targets)
        self.optimizer.step()
        self.step_count += 1
        self.balancer.after_step(lambda: self._losses_no_grad(x, targets))
        result = StepResult(self.step_count, losses.detach().cpu(), info)
        self.history["loss"].append(result.losses.tolist())
        self.history["weights"].append(info.weights.cpu().tolist() if info.weights is not None else None)
        for cb in self.callbacks:
            cb.on_step(self, result)
        return result

    def _losses_no_grad(self, x: Tensor, targets: Mapping[str, Tensor]) -> Tensor:
        with torch.no_grad():
            return self.losses(x, targets)[0]

    def _check_gradients(self, x: Tensor, targets: Mapping[str, Tensor]) -> None:
        grads = [p.grad for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        if not grads or bool(torch.cat([g.reshape(-1) for g in grads]).isfinite().all()):
            return
        self.optimizer.zero_grad(set_to_none=True)
        losses, _ = self.losses(x, targets)
        params = [p for p in self.model.parameters() if p.requires_grad]
        check_finite_gradients(task_gradients(losses, params, retain_graph=True), self.tasks, "model parameters")
        raise NonFiniteError(f"balancer {self.balancer.name!r} produced a non-finite gradient from finite "
                             "task gradients; no parameter was updated")

    # -- loops --------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`fit` to stop after the current step (from a callback or another thread)."""
        self._stop = True

    def fit(self, data: MultiTaskDataset, epochs: int | None = None, steps: int | None = None,
            val: MultiTaskDataset | None = None, progress: bool = False) -> dict[str, list]:
        """Train for ``epochs`` epochs or ``steps`` steps (whichever is given); returns the history."""
        if (epochs is None) == (steps is None):
            raise ValueError("give exactly one of epochs or steps")
        data = data.to(self.device)
        self.tasks.check_targets(data.targets)
        target_steps = self.step_count + steps if steps is not None else None
        bar = _progress(epochs if epochs is not None else steps, progress)
        self._stop = False
        epochs_done = 0
        while not self._stop and (epochs is None or epochs_done < epochs):
            totals, count = torch.zeros(len(self.tasks)), 0
            for x, y in data.batches(self.batch_size, self.generator):
                # no name kept for the step's result: its G (T x P) is freed before the next step builds one
                totals += self.train_step(x, y).losses * len(x)
                count += len(x)
                if steps is not None:
                    bar.update(1)
                if self._stop or (target_steps is not None and self.step_count >= target_steps):
                    break
            self._end_epoch(totals / max(count, 1), val)
            epochs_done += 1
            if epochs is not None:
                bar.update(1)
            if target_steps is not None and self.step_count >= target_steps:
                break
        bar.close()
        return self.history

    def _end_epoch(self, epoch_losses: Tensor, val: MultiTaskDataset | None) -> None:
        self.epoch += 1
        scores = self.evaluate(val) if val is not None else None
        self.history["epoch_loss"].append(epoch_losses.tolist())
        self.history["val"].append(scores)
        self.balancer.end_epoch(epoch_losses, scores)
        for cb in self.callbacks:
            cb.on_epoch_end(self, self.epoch, {"loss": epoch_losses, "val": scores})

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


__all__ = ["Callback", "OPTIMIZERS", "StepResult", "Trainer", "fit_single_task_baselines"]
