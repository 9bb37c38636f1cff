"""What every balancer is: per-task losses in, an update of the shared parameters out.

Two families (survey §3):

* :class:`WeightingBalancer` maps the loss vector L (T,) to weights w (T,) and
  back-propagates Σ_i w_i L_i. Subclasses implement ``weights(losses)`` or, when
  the objective is not a weighted sum (uncertainty weighting, GLS),
  ``objective(losses)``.
* :class:`GradientBalancer` maps the per-task gradient matrix G (T, P) to one
  update direction d (P,) through :meth:`~GradientBalancer.aggregate`, on a plain
  tensor, so the math is testable without any model. Most methods depend on G
  only through the Gram matrix K = G Gᵀ (formed once, in float64): they state
  their weights w (T,) from K in ``gram_weights(K)`` and d = wᵀG. ``on="params"``
  uses the gradients of the shared parameters θ; ``on="z"`` uses the gradients of
  the shared representation z and back-propagates d through the trunk once
  (MGDA-UB, Sener & Koltun 2018).

Non-finite input (a NaN or infinite loss or gradient) raises
:class:`~mtlkit.grads.NonFiniteError`, a ValueError naming the task, wherever a
balancer is called from: the Trainer or a direct call.

Task-specific parameters (towers, heads) always receive their own task's gradient.
Hooks for methods with memory: ``after_step`` (the losses after the optimizer
step, on the same batch: FAMO) and ``end_epoch`` (epoch-mean losses and
validation scores: DWA, DTP).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..grads import NonFiniteError, task_gradients
from ..models.base import MTLOutput, MultiTaskModel, requires_representation
from .solvers import as_weights, gram


@dataclass
class StepInfo:
    """What a balancer did this step, for callbacks and live plots (all detached)."""

    weights: Tensor | None = None     # (T,) task weights, where the method has them
    grads: Tensor | None = None       # (T, P) per-task gradients, for gradient methods
    direction: Tensor | None = None   # (P,) the update applied to θ (or z)


class Balancer(nn.Module):
    """Base class of every balancer. ``name`` is its registry key."""

    name = "balancer"
    #: True when the update needs the model itself (its own ``backward`` reads the model's
    #: parameters or task kinds): it cannot be computed from the losses and G alone.
    needs_model = False

    def __init__(self) -> None:
        super().__init__()
        self.num_tasks: int | None = None
        self.task_names: list[str] | None = None
        # follows .to(device), so state created in setup() lands on the Trainer's device
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)

    @property
    def device(self) -> torch.device:
        """The device this balancer was moved to (where setup() creates its state)."""
        return self._anchor.device

    def setup(self, num_tasks: int, task_names: Sequence[str] | None = None) -> None:
        """Called once by the Trainer with the number of tasks (and their names), before the first step."""
        self.num_tasks = num_tasks
        self.task_names = list(task_names) if task_names is not None else None

    def task_label(self, i: int) -> str:
        """How errors name task i: its name when the Trainer gave names, else its index."""
        if self.task_names is not None and i < len(self.task_names):
            return self.task_names[i]
        return f"{i} (row {i})"

    def check_finite(self, values: Tensor, what: str, consequence: str = "no parameter was updated") -> None:
        """Raise NonFiniteError naming every task i whose ``values[i]`` (a loss, or a row) is NaN or inf."""
        bad = ~torch.isfinite(values.detach()).reshape(values.shape[0], -1).all(dim=1)
        if bool(bad.any()):
            names = ", ".join(self.task_label(i) for i in torch.nonzero(bad).flatten().tolist())
            raise NonFiniteError(f"non-finite {what} for task {names}; {consequence}")

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
        self.check_finite(losses, "loss")
        w = self.weights(losses.detach())
        return (w * losses).sum(), w.detach()

    def backward(self, losses: Tensor, model: MultiTaskModel, output: MTLOutput) -> StepInfo:
        total, w = self.objective(losses)
        total.backward()
        return StepInfo(weights=w)


class GradientBalancer(Balancer):
    """Gradient manipulation: d = aggregate(G), applied to θ (``on="params"``) or z (``on="z"``).

    Subclasses state ``gram_weights(K)`` (w from the float64 Gram matrix, d = wᵀG)
    or, when they need G itself (GradDrop) or its dtype (Aligned-MTL), override
    ``combine(G, K)``. ``uses_gram = False`` skips forming K.
    """

    #: whether ``combine`` reads the Gram matrix K = G Gᵀ (then K's diagonal also checks G is finite)
    uses_gram = True

    def __init__(self, on: str = "params") -> None:
        super().__init__()
        if on not in {"params", "z"}:
            raise ValueError(f"on must be 'params' (shared parameters) or 'z' (shared representation), got {on!r}")
        self.on = on
        self.last_weights: Tensor | None = None
        #: (T,) detached losses of the current step, set before ``aggregate`` (MGDA's loss normalisations).
        self.last_losses: Tensor | None = None

    def aggregate(self, G: Tensor, losses: Tensor | None = None) -> Tensor:
        """G (T, P) -> update direction d (P,); ``last_weights`` holds w where d = wᵀG.

        ``losses`` (T,): this step's losses, for methods that read them (MGDA's loss
        normalisations; the Trainer passes them itself). Raises NonFiniteError (a
        ValueError) naming the task whose row of G is NaN or inf.
        """
        if losses is not None:
            self.last_losses = losses.detach()
        return self._direction(G, "rows of G (gradient matrix)")

    def gram_weights(self, K: np.ndarray) -> np.ndarray:
        """w (T,) from the Gram matrix K (T, T), float64; d = wᵀG."""
        raise NotImplementedError(f"{type(self).__name__} must define gram_weights(K), combine(G, K) or aggregate(G)")

    def combine(self, G: Tensor, K: np.ndarray | None) -> Tensor:
        """d (P,) from G (T, P) and K = G Gᵀ (None when ``uses_gram`` is False)."""
        w = as_weights(self.gram_weights(K), G)
        self.last_weights = w
        return w @ G

    def _direction(self, G: Tensor, what: str) -> Tensor:
        if G.dim() != 2:
            raise ValueError(f"{type(self).__name__}: G must be a (T, P) matrix of per-task gradients, "
                             f"got shape {tuple(G.shape)}")
        if self.task_names is not None and G.shape[0] != len(self.task_names):
            raise ValueError(f"{type(self).__name__}: G has {G.shape[0]} rows but the balancer was set up for "
                             f"{len(self.task_names)} tasks ({', '.join(self.task_names)})")
        K = gram(G) if self.uses_gram else None
        # one pass over G: K's diagonal ||g_i||² is NaN or inf exactly when row i is (or overflows float64)
        self.check_finite(torch.tensor(np.diag(K)) if K is not None else G, f"gradient w.r.t. the {what}")
        self.last_weights = None
        return _checked_direction(self, self.combine(G, K), G)

    def backward(self, losses: Tensor, model: MultiTaskModel, output: MTLOutput) -> StepInfo:
        shared = model.shared_parameters()
        if not shared:  # nothing is shared: every task already gets only its own gradient
            losses.sum().backward()
            return StepInfo()
        inputs = [requires_representation(output, model)] if self.on == "z" else shared
        specific = [p for n in model.tasks for p in model.task_parameters(n)]
        G = task_gradients(losses, inputs)
        if self.task_names is None:
            self.task_names = list(model.tasks)
        self.last_losses = losses.detach()
        what = "shared representation z" if self.on == "z" else "shared parameters"
        if type(self).aggregate is GradientBalancer.aggregate:
            d = self._direction(G, what)
        else:  # a subclass that writes aggregate(G) itself (a student's method): check its input here
            self.check_finite(G, f"gradient w.r.t. the {what}")
            self.last_weights = None
            d = _checked_direction(self, self.aggregate(G), G)
        if specific:
            losses.sum().backward(inputs=specific, retain_graph=self.on == "z")
        if self.on == "z":
            output.z.backward(d.view_as(output.z), inputs=shared)
        else:
            _add_flat_grad(shared, d)
        return StepInfo(weights=self.last_weights, grads=G.detach(), direction=d.detach())


def _checked_direction(balancer: GradientBalancer, d: Tensor, G: Tensor) -> Tensor:
    if d.shape != (G.shape[1],):
        raise RuntimeError(f"{type(balancer).__name__} returned an update of shape {tuple(d.shape)}, "
                           f"expected ({G.shape[1]},)")
    return d


def _add_flat_grad(params: list[nn.Parameter], flat: Tensor) -> None:
    offset = 0
    for p in params:
        n = p.numel()
        g = flat[offset:offset + n].view_as(p).to(p.dtype)
        p.grad = g.clone() if p.grad is None else p.grad + g
        offset += n
