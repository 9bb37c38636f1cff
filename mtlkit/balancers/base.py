"""What every balancer is: per-task losses in, an update of the shared parameters out.

Two families (survey §3):

* :class:`WeightingBalancer` maps the loss vector L (T,) to weights w (T,) and
  back-propagates Σ_i w_i L_i. Subclasses implement ``weights(losses)`` or, when
  the objective is not a weighted sum (uncertainty weighting, GLS),
  ``objective(losses)``.
* :class:`GradientBalancer` maps the per-task gradient matrix G (T, P) to one
  update direction d (P,). Subclasses implement ``aggregate(G)`` on a plain
  tensor, so the math is testable without any model. ``on="params"`` uses the
  gradients of the shared parameters θ; ``on="z"`` uses the gradients of the
  shared representation z and back-propagates d through the trunk once
  (MGDA-UB, Sener & Koltun 2018).

Task-specific parameters (towers, heads) always receive their own task's gradient.
Hooks for methods with memory: ``after_step`` (the losses after the optimizer
step, on the same batch: FAMO) and ``end_epoch`` (epoch-mean losses and
validation scores: DWA, DTP).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import Tensor, nn

from ..grads import check_finite_gradients, task_gradients
from ..models.base import MTLOutput, MultiTaskModel, requires_representation


@dataclass
class StepInfo:
    """What a balancer did this step, for callbacks and live plots (all detached)."""

    weights: Tensor | None = None     # (T,) task weights, where the method has them
    grads: Tensor | None = None       # (T, P) per-task gradients, for gradient methods
    direction: Tensor | None = None   # (P,) the update applied to θ (or z)


class Balancer(nn.Module):
    """Base class of every balancer. ``name`` is its registry key."""

    name = "balancer"
    #: True for methods that need the per-task gradient matrix G.
    uses_gradients = False

    def __init__(self) -> None:
        super().__init__()
        self.num_tasks: int | None = None
        # follows .to(device), so state created in setup() lands on the Trainer's device
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)

    @property
    def device(self) -> torch.device:
        """The device this balancer was moved to (where setup() creates its state)."""
        return self._anchor.device

    def setup(self, num_tasks: int) -> None:
        """Called once by the Trainer with the number of tasks, before the first step."""
        self.num_tasks = num_tasks

    def backward(self, losses: Tensor, model: MultiTaskModel, output: MTLOutput) -> StepInfo:
        """Fill ``.grad`` of every learnable parameter for this step."""
        raise NotImplementedError

    def after_step(self, losses_now: Callable[[], Tensor]) -> None:
        """Called after the optimizer step; ``losses_now()`` recomputes the batch's losses."""

    def end_epoch(self, epoch_losses: Tensor, scores: Mapping[str, Mapping[str, float]] | None) -> None:
        """Called at each epoch end with the epoch-mean training losses (T,)."""

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


class WeightingBalancer(Balancer):
    """Loss weighting: back-propagate Σ_i w_i L_i."""

    def weights(self, losses: Tensor) -> Tensor:
        raise NotImplementedError

    def objective(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        """Scalar objective to back-propagate, and the (detached) weights to report."""
        w = self.weights(losses.detach())
        return (w * losses).sum(), w.detach()

    def backward(self, losses: Tensor, model: MultiTaskModel, output: MTLOutput) -> StepInfo:
        total, w = self.objective(losses)
        total.backward()
        return StepInfo(weights=w)


class GradientBalancer(Balancer):
    """Gradient manipulation: d = aggregate(G), applied to θ (``on="params"``) or z (``on="z"``)."""

    uses_gradients = True

    def __init__(self, on: str = "params") -> None:
        super().__init__()
        if on not in {"params", "z"}:
            raise ValueError(f"on must be 'params' (shared parameters) or 'z' (shared representation), got {on!r}")
        self.on = on
        self.last_weights: Tensor | None = None
        #: (T,) detached losses of the current step, set before ``aggregate`` (MGDA's loss normalisations).
        self.last_losses: Tensor | None = None

    def aggregate(self, G: Tensor) -> Tensor:
        """G (T, P) -> update direction d (P,). Subclasses may set ``self.last_weights``."""
        raise NotImplementedError

    def backward(self, losses: Tensor, model: MultiTaskModel, output: MTLOutput) -> StepInfo:
        shared = model.shared_parameters()
        if not shared:  # nothing is shared: every task already gets only its own gradient
            losses.sum().backward()
            return StepInfo()
        inputs = [requires_representation(output, model)] if self.on == "z" else shared
        specific = [p for n in model.tasks for p in model.task_parameters(n)]
        G = task_gradients(losses, inputs)
        check_finite_gradients(G, model.tasks, "shared representation z" if self.on == "z" else "shared parameters")
        self.last_weights = None
        self.last_losses = losses.detach()
        d = self.aggregate(G)
        if d.shape != (G.shape[1],):
            raise RuntimeError(f"{type(self).__name__}.aggregate returned shape {tuple(d.shape)}, "
                               f"expected ({G.shape[1]},)")
        if specific:
            losses.sum().backward(inputs=specific, retain_graph=self.on == "z")
        if self.on == "z":
            output.z.backward(d.view_as(output.z), inputs=shared)
        else:
            _add_flat_grad(shared, d)
        return StepInfo(weights=self.last_weights, grads=G.detach(), direction=d.detach())


def _add_flat_grad(params: list[nn.Parameter], flat: Tensor) -> None:
    offset = 0
    for p in params:
        n = p.numel()
        g = flat[offset:offset + n].view_as(p).to(p.dtype)
        p.grad = g.clone() if p.grad is None else p.grad + g
        offset += n
