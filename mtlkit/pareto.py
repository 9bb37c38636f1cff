"""Pareto fronts and optimiser trajectories on the 2-D toy landscape (survey §3.6).

Multi-objective view of multi-task learning: a point θ *dominates* θ' when
L_i(θ) ≤ L_i(θ') for every task i and L_j(θ) < L_j(θ') for some j. The
non-dominated points form the Pareto front; no task can improve there without
another getting worse. θ is *Pareto-stationary* when no direction decreases
every loss at once, i.e. when the convex hull of the task gradients holds 0:

    min_{α ∈ Δ} || Σ_i α_i ∇L_i(θ) || = 0        (MGDA's min-norm problem)

Two ways to look for the front:

* linear scalarization: minimise Σ_i w_i L_i for several w on the simplex; every
  minimiser is Pareto optimal, but only the convex part of the front is reachable
  (:func:`scalarization_sweep`);
* gradient methods (MGDA, CAGrad, Nash-MTL, ...) that move towards a
  Pareto-stationary point from wherever training starts (:func:`method_points`).

:func:`toy_trajectory` runs any registered balancer, through its ordinary
``aggregate`` / ``objective``, on the landscape of :mod:`mtlkit.data.toy2d` (the
CAGrad and Nash-MTL papers' Figure 1), where the parameter θ = (x₁, x₂) is the
whole model and the optimiser is Adam, as in both papers' code. The toy's
losses are shifted by :data:`mtlkit.data.toy2d.SHIFT` (FAMO's code does the same)
so that methods taking logarithms of the losses run too; no gradient changes.
:func:`update_direction` gives any balancer's update for a loss vector and a
gradient matrix, without a model (e.g. to watch it rotate when a loss is rescaled).

Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018,
arXiv 1810.04650. Liu et al., "Conflict-Averse Gradient Descent for Multi-task
Learning", NeurIPS 2021, arXiv 2110.14048. Navon et al., "Multi-Task Learning as a
Bargaining Game", ICML 2022, arXiv 2202.01017.
"""
from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .balancers import MGDA, Balancer, GradientBalancer, WeightingBalancer, make_balancer
from .config import seed_everything
from .data.base import MultiTaskDataset
from .data.toy2d import SHIFT, STARTS, TASKS, pareto_set_distance, toy_jacobian, toy_losses
from .models.base import MTLOutput, MultiTaskModel
from .tasks import TaskSet
from .train import Trainer

# -- Pareto fronts ---------------------------------------------------------------
def non_dominated(points: Tensor | np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Boolean mask (N,) of the rows of ``points`` (N, M) no other row dominates (minimisation).

    Duplicated points do not dominate each other, so all copies are kept.
    """
    P = np.asarray(points, dtype=float)
    if P.ndim != 2:
        raise ValueError(f"points must be a matrix (N, M) of objective values, got shape {P.shape}")
    if not np.isfinite(P).all():
        raise ValueError("points contain NaN or inf")
    keep = np.ones(len(P), dtype=bool)
    for i in range(len(P)):
        if not keep[i]:
            continue
        dominated_by_i = (P[i] <= P).all(axis=1) & (P[i] < P).any(axis=1)
        keep &= ~dominated_by_i
    return keep


def pareto_front(points: Tensor | np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Indices of the non-dominated rows, sorted by the first objective (for drawing the front)."""
    P = np.asarray(points, dtype=float)
    idx = np.flatnonzero(non_dominated(P))
    return idx[np.lexsort(P[idx].T[::-1])]


def simplex_weights(n: int) -> list[tuple[float, float]]:
    """``n`` evenly spaced two-task weight vectors (w, 1 - w), from (0, 1) to (1, 0)."""
    if n < 2:
        raise ValueError(f"need at least 2 weight vectors, got {n}")
    return [(float(w), float(1 - w)) for w in np.linspace(0.0, 1.0, n)]


@dataclass
class FrontPoint:
    """One trained model as a point in objective space: its per-task test values."""

    method: str                              # "fixed" for linear scalarization, else the balancer
    weights: tuple[float, ...] | None        # the fixed weights w, for linear scalarization
    seed: int
    objectives: dict[str, float]             # task -> test value (loss by default; lower is better)

    @property
    def label(self) -> str:
        if self.weights is not None:
            return "w = (" + ", ".join(f"{w:.2f}" for w in self.weights) + ")"
        return f"{self.method} (seed {self.seed})"


def objective_matrix(points: Sequence[FrontPoint], tasks: Sequence[str]) -> np.ndarray:
    """(N, T) objective values of ``points`` in the order of ``tasks`` (for :func:`non_dominated`)."""
    return np.array([[p.objectives[t] for t in tasks] for p in points], dtype=float)


def train_point(make_model: Callable[[TaskSet], MultiTaskModel], train: MultiTaskDataset, test: MultiTaskDataset,
                balancer: str | Balancer, steps: int, seed: int = 0, metric: str = "loss",
                **trainer_kwargs) -> dict[str, float]:
    """Train ``make_model(train.tasks)`` with ``balancer`` for ``steps`` steps; task -> test ``metric``.

    Seeded: the same ``seed`` gives the same initial model and batches for every balancer.
    ``trainer_kwargs`` go to :class:`Trainer` (lr, batch_size, device, ...).
    """
    seed_everything(seed)
    trainer = Trainer(make_model(train.tasks), balancer, seed=seed, **trainer_kwargs)
    trainer.fit(train, steps=steps)
    scores = trainer.evaluate(test)
    missing = [n for n in scores if metric not in scores[n]]
    if missing:
        raise KeyError(f"metric {metric!r} is not computed for task(s) {missing}; known: {sorted(scores[missing[0]])}")
    return {n: scores[n][metric] for n in train.tasks}


def scalarization_sweep(make_model: Callable[[TaskSet], MultiTaskModel], train: MultiTaskDataset,
                        test: MultiTaskDataset, weights: Iterable[Sequence[float]], steps: int, seed: int = 0,
                        metric: str = "loss", **trainer_kwargs) -> list[FrontPoint]:
    """Linear scalarization: one model per weight vector w, trained on Σ_i w_i L_i (``FixedWeighting``)."""
    points = []
    for w in weights:
        w = tuple(float(v) for v in w)
        if len(w) != len(train.tasks):
            raise ValueError(f"weight vector {w} has {len(w)} entries for {len(train.tasks)} tasks {train.tasks.names}")
        objectives = train_point(make_model, train, test, make_balancer("fixed", weights=w), steps, seed, metric,
                                 **trainer_kwargs)
        points.append(FrontPoint("fixed", w, seed, objectives))
    return points


def method_points(make_model: Callable[[TaskSet], MultiTaskModel], train: MultiTaskDataset, test: MultiTaskDataset,
                  methods: Iterable[str], steps: int, seeds: Iterable[int] = (0,), metric: str = "loss",
                  **trainer_kwargs) -> list[FrontPoint]:
    """One model per registered balancer and seed (e.g. MGDA's points, one per initialisation)."""
    return [FrontPoint(m, None, seed, train_point(make_model, train, test, m, steps, seed, metric, **trainer_kwargs))
            for m in methods for seed in seeds]


# -- the toy landscape ---------------------------------------------------------------
class ToyModel(MultiTaskModel):
    """θ = (x₁, x₂) is the whole model: the "outputs" are the two toy losses, z = θ.

    ``shift`` is added to both losses, then ``scale`` multiplies f₁ + shift (the Nash-MTL
    paper uses 0.1 to make the tasks' scales differ; FAMO's code shifts by 21, then scales).
    """

    def __init__(self, start: Sequence[float], scale: float = 1.0, shift: float = 0.0):
        super().__init__(TASKS)
        self.theta = nn.Parameter(torch.tensor([float(start[0]), float(start[1])]))
        self.heads = nn.ModuleDict()
        self.scale, self.shift = scale, shift

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.tasks[name]
        return []

    def losses(self) -> tuple[Tensor, MTLOutput]:
        z = self.theta * 1.0
        f = toy_losses(z, self.shift) * torch.tensor([self.scale, 1.0], dtype=z.dtype)
        return f, MTLOutput({"f1": f[0], "f2": f[1]}, z)

    def forward(self, x: Tensor | None = None) -> MTLOutput:
        return self.losses()[1]


@dataclass
class Trajectory:
    """One optimiser run on the toy, recorded every few steps.

    thetas (N+1, 2) from the start on; losses (N+1, 2) the unscaled (f₁, f₂) + shift there;
    weights (N, 2) the balancer's task weights (NaN for methods without weights);
    steps the number of optimiser steps taken (fewer than asked when the run stalled).
    """

    method: str
    start: tuple[float, float]
    thetas: np.ndarray
    losses: np.ndarray
    weights: np.ndarray
    steps: int

    @property
    def end(self) -> np.ndarray:
        return self.thetas[-1]

    def distance_to_pareto_set(self) -> float:
        """Euclidean distance in θ from the end point to the toy's exact Pareto set.

        See :func:`mtlkit.data.toy2d.toy_pareto_set`.
        """
        return float(pareto_set_distance(self.end[None])[0])


def pareto_stationarity(theta: Sequence[float], scale: float = 1.0) -> float:
    """min_{α ∈ Δ} ||α₁ ∇f₁ + α₂ ∇f₂|| at θ: the norm of MGDA's direction, 0 exactly where θ is Pareto-stationary."""
    _, J = toy_jacobian(np.asarray(theta, dtype=float), scale)
    return float(MGDA().aggregate(torch.from_numpy(J)).norm())


class _Adam:
    """torch.optim.Adam's update (default betas, no weight decay) for one NumPy vector."""

    def __init__(self, x: np.ndarray, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.x, self.lr, self.betas, self.eps = x, lr, betas, eps
        self.m, self.v, self.t = np.zeros_like(x), np.zeros_like(x), 0

    def step(self, grad: np.ndarray) -> None:
        b1, b2 = self.betas
        self.t += 1
        self.m = b1 * self.m + (1 - b1) * grad
        self.v = b2 * self.v + (1 - b2) * grad * grad
        denom = np.sqrt(self.v) / np.sqrt(1 - b2 ** self.t) + self.eps
        self.x -= self.lr / (1 - b1 ** self.t) * self.m / denom


def _fast_direction(method: Balancer, f: np.ndarray, J: np.ndarray) -> tuple[np.ndarray, Tensor | None] | None:
    """The update d (2,) and weights a balancer gives for losses f and Jacobian J; None if it needs a model."""
    if method.needs_model or not isinstance(method, (GradientBalancer, WeightingBalancer)):
        return None
    if isinstance(method, GradientBalancer):
        d = method.aggregate(torch.from_numpy(J), torch.from_numpy(f))
        return d.detach().double().numpy(), method.last_weights
    losses = torch.from_numpy(f).requires_grad_(True)
    objective, w = method.objective(losses)
    objective.backward()  # fills losses.grad (dObjective/dL_i) and the balancer's own parameters
    return losses.grad.numpy() @ J, w


def update_direction(balancer: str | Balancer, losses: Tensor | np.ndarray | Sequence[float],
                     G: Tensor | np.ndarray, **kwargs) -> np.ndarray:
    """The update d (P,) a balancer makes from the losses (T,) and the gradient matrix G (T, P), with no model.

    Gradient methods see the losses, then ``aggregate(G)``, as in training; loss-weighting
    methods back-propagate their objective to the losses and apply ∂objective/∂L_i to
    the rows of G. Computed in float64 on a fresh balancer (a name with ``kwargs``) or
    on a copy of the one given, so a balancer's state is left untouched. Methods with
    ``needs_model`` (GradNorm, DTP) raise a ValueError.
    """
    method = copy.deepcopy(make_balancer(balancer, **kwargs)).double()
    f = np.asarray(losses.detach().cpu() if isinstance(losses, Tensor) else losses, dtype=float)
    J = np.asarray(G.detach().cpu() if isinstance(G, Tensor) else G, dtype=float)
    if J.ndim != 2 or f.shape != (J.shape[0],):
        raise ValueError(f"need losses (T,) and G (T, P) for the same T tasks, got {f.shape} and {J.shape}")
    method.setup(len(f))
    fast = _fast_direction(method, f, J)
    if fast is None:
        raise ValueError(f"{method.name} computes its update through a model (its own backward), "
                         "not from the losses and G alone")
    return fast[0]


def toy_trajectory(balancer: str | Balancer, start: Sequence[float] = STARTS[0], steps: int = 2000,
                   lr: float = 1e-3, scale: float = 1.0, every: int = 1, stall: tuple[int, float] | None = None,
                   shift: float = SHIFT, **kwargs) -> Trajectory:
    """Run ``balancer`` (a registry name with ``kwargs``, or an instance) with Adam from ``start``.

    Adam with learning rate ``lr`` (1e-3 in both papers' code, for 35,000 (Nash-MTL) or
    100,000 (CAGrad) steps).

    The balancer sees the losses ((f₁ + ``shift``)·``scale``, f₂ + ``shift``) and their
    gradient matrix G = J (2 × 2) through its ordinary ``aggregate`` / ``objective``. The
    default shift, :data:`~mtlkit.data.toy2d.SHIFT` = 21, makes both losses positive, so
    methods that take logarithms or products of the losses (FAMO, GLS, uncertainty
    weighting) run; it changes no gradient, so a gradient method's path is the same
    with any shift (except MGDA's loss-based normalisations, which read the losses). Methods
    that declare ``needs_model`` (GradNorm, DTP) run through a :class:`ToyModel`
    instead. Each step is also an "epoch" for the balancer (``end_epoch`` with
    the current losses), since the toy has no data: DWA and DTP see every step.
    θ is recorded every ``every`` steps; runs are deterministic.

    ``stall=(window, tol)`` stops early once θ has moved less than ``tol`` (net,
    Euclidean) over the last ``window`` steps: the run has converged or is stuck.
    A non-finite update raises a ValueError naming the method and the step.
    """
    if steps < 1 or every < 1:
        raise ValueError(f"steps and every must be >= 1, got steps={steps}, every={every}")
    if stall is not None and (stall[0] < 1 or not stall[1] > 0):
        raise ValueError(f"stall must be (window >= 1, tol > 0), got {stall}")
    torch.manual_seed(0)
    method = make_balancer(balancer, **kwargs).double()
    method.setup(len(TASKS))
    name = balancer if isinstance(balancer, str) else method.name
    model = ToyModel(start, scale, shift).double()
    extra = [p for p in method.parameters() if p.requires_grad]
    method_opt = torch.optim.Adam(extra, lr=lr) if extra else None
    theta = np.array([float(start[0]), float(start[1])])
    adam = _Adam(theta, lr)
    thetas, weights = [theta.copy()], []
    recent = deque([theta.copy()], maxlen=stall[0] + 1 if stall is not None else 1)
    for step in range(steps):
        if method_opt is not None:
            method_opt.zero_grad(set_to_none=True)
        f, J = toy_jacobian(theta, scale, shift)
        fast = _fast_direction(method, f, J)
        d, w = fast if fast is not None else _model_direction(method, model, theta)
        if not np.isfinite(d).all():
            raise ValueError(f"{name} gave a non-finite update {d} at step {step} from θ = {theta} (losses {f}); "
                             "methods that take logs or products of the losses need them positive: the toy's "
                             f"losses go down to -20, so use shift >= 21 (got shift={shift})")
        adam.step(d)
        if method_opt is not None:
            method_opt.step()
        method.after_step(lambda: torch.from_numpy(toy_jacobian(theta, scale, shift)[0]))
        method.end_epoch(torch.from_numpy(f), None)
        done = step == steps - 1
        if stall is not None:
            recent.append(theta.copy())
            if len(recent) == recent.maxlen:
                done |= bool(np.linalg.norm(recent[-1] - recent[0]) < stall[1])
        if (step + 1) % every == 0 or done:
            thetas.append(theta.copy())
            weights.append(w.detach().double().cpu().numpy() if w is not None else np.full(2, np.nan))
        if done:
            break
    T = np.stack(thetas)
    return Trajectory(name, (float(start[0]), float(start[1])), T, toy_losses(torch.from_numpy(T), shift).numpy(),
                      np.stack(weights), step + 1)


def _model_direction(method: Balancer, model: ToyModel, theta: np.ndarray) -> tuple[np.ndarray, Tensor | None]:
    """The update of a balancer that needs the model (``needs_model``), read from ``model.theta.grad``."""
    with torch.no_grad():
        model.theta.copy_(torch.from_numpy(theta))
    model.theta.grad = None
    losses, output = model.losses()
    info = method.backward(losses, model, output)
    grad = model.theta.grad.numpy().copy() if model.theta.grad is not None else np.zeros(2)
    return grad, info.weights


def toy_trajectories(methods: Iterable[str], starts: Iterable[Sequence[float]] = STARTS,
                     method_kwargs: Mapping[str, Mapping] | None = None, **kwargs) -> dict[str, list[Trajectory]]:
    """method -> one :class:`Trajectory` per start point.

    ``method_kwargs`` gives a method's own constructor arguments (e.g. ``{"cagrad": {"c": 0.5}}``);
    ``kwargs`` (steps, lr, scale, stall, ...) go to every :func:`toy_trajectory` call.
    """
    starts, method_kwargs = list(starts), dict(method_kwargs or {})
    return {m: [toy_trajectory(m, s, **kwargs, **dict(method_kwargs.get(m, {}))) for s in starts] for m in methods}


__all__ = ["FrontPoint", "ToyModel", "Trajectory", "method_points", "non_dominated", "objective_matrix",
           "pareto_front", "pareto_stationarity", "scalarization_sweep", "simplex_weights", "toy_trajectories",
           "toy_trajectory", "train_point", "update_direction"]
