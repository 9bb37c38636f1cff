"""Per-task gradients and the gradient-conflict statistics behind the live plots.

G is the (T, P) matrix whose row i is g_i = ∇ L_i flattened over the chosen
inputs (the shared parameters θ, or the shared representation z).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .tasks import TaskSet


class NonFiniteError(FloatingPointError):
    """A loss or gradient is NaN or infinite; the message names the task."""


def task_gradients(losses: Tensor, inputs: Sequence[Tensor], retain_graph: bool = True) -> Tensor:
    """G (T, P): row i is ∇ losses[i] with respect to ``inputs``, flattened and concatenated.

    Inputs a loss does not reach contribute zeros.
    """
    if losses.dim() != 1:
        raise ValueError(f"losses must be a vector (T,), got shape {tuple(losses.shape)}")
    rows = []
    for i in range(losses.shape[0]):
        grads = torch.autograd.grad(losses[i], list(inputs), retain_graph=retain_graph, allow_unused=True)
        rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                               for g, p in zip(grads, inputs)]))
    return torch.stack(rows)


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
