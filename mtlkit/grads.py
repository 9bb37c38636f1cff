"""Per-task gradients and the gradient-conflict statistics behind the live plots.

G is the (T, P) matrix whose row i is g_i = ∇ L_i flattened over the chosen
inputs (the shared parameters θ, or the shared representation z).
"""
from __future__ import annotations

import warnings
from typing import Sequence

import torch
from torch import Tensor

from .tasks import TaskSet


class NonFiniteError(ValueError, FloatingPointError):
    """A loss or gradient is NaN or infinite; the message names the task.

    A ValueError (bad input) and a FloatingPointError (what NumPy and older code catch).
    """


def task_gradients(losses: Tensor, inputs: Sequence[Tensor], retain_graph: bool = True,
                   batched: bool | None = None) -> Tensor:
    """G (T, P): row i is ∇ losses[i] with respect to ``inputs``, flattened and concatenated.

    Inputs a loss does not reach contribute zeros. ``batched=True`` computes all T
    rows in one vectorised backward pass (``torch.autograd.grad(...,
    is_grads_batched=True)``, i.e. vmap over the backward graph) and falls back to
    the loop when vmap cannot handle an op; ``batched=False`` runs T backward
    passes. ``None`` picks :data:`BATCHED_DEFAULT`, the faster of the two on the
    benchmarks (see ``benchmarks/balancers.py --grads``).
    """
    if losses.dim() != 1:
        raise ValueError(f"losses must be a vector (T,), got shape {tuple(losses.shape)}")
    inputs = list(inputs)
    use_batched = BATCHED_DEFAULT if batched is None else batched
    if use_batched and losses.shape[0] > 1:
        try:
            return _task_gradients_batched(losses, inputs, retain_graph)
        except RuntimeError:  # an op without a batching rule for its backward: loop instead
            pass
    return _task_gradients_loop(losses, inputs, retain_graph)


#: Default of ``task_gradients(batched=None)``. Measured on CPU (2 cores, torch 2.13,
#: ``python benchmarks/balancers.py --grads``): the loop was faster or equal for every
#: model tried, since vmap over a small backward pays more in bookkeeping than it
#: saves. CUDA was not available to measure.
BATCHED_DEFAULT = False


def _flatten(grads: Sequence[Tensor | None], inputs: Sequence[Tensor], lead: tuple[int, ...] = ()) -> Tensor:
    return torch.cat([(g if g is not None else p.new_zeros(lead + p.shape)).reshape(*lead, -1)
                      for g, p in zip(grads, inputs)], dim=-1)


def _task_gradients_loop(losses: Tensor, inputs: list[Tensor], retain_graph: bool) -> Tensor:
    T = losses.shape[0]
    rows = []
    for i in range(T):
        keep = retain_graph or i < T - 1
        grads = torch.autograd.grad(losses[i], inputs, retain_graph=keep, allow_unused=True)
        rows.append(_flatten(grads, inputs))
    return torch.stack(rows)


def _task_gradients_batched(losses: Tensor, inputs: list[Tensor], retain_graph: bool) -> Tensor:
    T = losses.shape[0]
    eye = torch.eye(T, dtype=losses.dtype, device=losses.device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*performance drop.*")
        grads = torch.autograd.grad(losses, inputs, grad_outputs=eye, retain_graph=True,
                                    allow_unused=True, is_grads_batched=True)
    return _flatten(grads, inputs, (T,))


def check_finite_losses(losses: Tensor, tasks: TaskSet, step: int | None = None) -> None:
    """Raise NonFiniteError naming every task whose loss is NaN or infinite."""
    values = losses.detach()
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        where = f" at step {step}" if step is not None else ""
        names = [f"{n} (loss={float(values[i])})" for i, n in enumerate(tasks) if bad[i]]
        raise NonFiniteError(f"non-finite loss{where} for task {', '.join(names)}; "
                             "no parameter was updated")


def check_finite_gradients(G: Tensor, tasks: TaskSet, what: str = "shared parameters") -> None:
    """Raise NonFiniteError naming every task whose gradient row of G holds NaN or inf."""
    bad = ~torch.isfinite(G).all(dim=1)
    if bool(bad.any()):
        names = [n for i, n in enumerate(tasks) if bad[i]]
        raise NonFiniteError(f"non-finite gradient w.r.t. the {what} for task {', '.join(names)}; "
                             "no parameter was updated")


def cosine_matrix(G: Tensor, eps: float = 1e-12) -> Tensor:
    """(T, T) pairwise cosine similarities of the rows of G; a zero row has cosine 0 with all."""
    norms = G.norm(dim=1, keepdim=True)
    U = G / norms.clamp_min(eps)
    C = U @ U.T
    zero = norms.squeeze(1) <= eps
    C[zero, :] = 0.0
    C[:, zero] = 0.0
    idx = torch.arange(G.shape[0])
    C[idx[~zero], idx[~zero]] = 1.0
    return C


def conflict_stats(G: Tensor) -> dict[str, float]:
    """Fraction and count of task pairs whose gradients conflict (negative inner product)."""
    T = G.shape[0]
    if T < 2:
        return {"conflicting_pairs": 0, "pairs": 0, "conflict_fraction": 0.0}
    K = G @ G.T
    iu = torch.triu_indices(T, T, offset=1)
    neg = int((K[iu[0], iu[1]] < 0).sum())
    pairs = T * (T - 1) // 2
    return {"conflicting_pairs": neg, "pairs": pairs, "conflict_fraction": neg / pairs}


def update_cosines(G: Tensor, d: Tensor, eps: float = 1e-12) -> Tensor:
    """(T,) cos(d, g_i): how well the applied update d (P,) serves each task; 0 for a zero vector."""
    if d.shape != (G.shape[1],):
        raise ValueError(f"update must have shape ({G.shape[1]},) to match G {tuple(G.shape)}, got {tuple(d.shape)}")
    dots = G @ d
    den = G.norm(dim=1) * d.norm()
    return torch.where(den > eps, dots / den.clamp_min(eps), torch.zeros_like(dots))
