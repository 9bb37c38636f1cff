"""Gradient-conflict diagnostics recorded during training, for live plots and notebook checks.

:class:`ConflictMonitor` is a :class:`~mtlkit.train.Callback`. Every ``every``
steps it records, from the per-task gradient matrix G (T, P) and the applied
update d (P,):

* the pairwise cosine matrix cos(g_i, g_j) and the fraction of conflicting
  pairs (g_i · g_j < 0), the per-task norms ||g_i||;
* cos(d, g_i): does the update serve task i (> 0) or work against it (< 0)?
* a 2-D picture: the rows of G and d written in an orthonormal basis of the
  plane spanned by g_1 and g_2 (Gram-Schmidt), exact when P = 2.

Gradient methods hand G and d over in their StepInfo, so recording costs
nothing. For loss-weighting methods the monitor computes G itself on a fixed
probe batch at the current parameters (one backward per task, only every
``every`` steps) and uses d = Σ_i w_i g_i, the update the step's weights imply.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import Tensor

from .grads import conflict_stats, cosine_matrix, task_gradients, update_cosines
from .train import Callback, StepResult, Trainer


@dataclass
class ConflictRecord:
    """Diagnostics of one logged step (all on the CPU)."""

    step: int
    cosine: Tensor          # (T, T)
    conflict_fraction: float
    norms: Tensor           # (T,)
    update_cosine: Tensor   # (T,) cos(d, g_i)
    plane: Tensor           # (T, 2) the task gradients in the 2-D basis
    update_plane: Tensor    # (2,) the update in the same basis
    space: str              # "params" or "z": what the gradients are taken with respect to


def plane_basis(G: Tensor, rtol: float = 1e-6) -> Tensor:
    """(2, P) orthonormal rows spanning g_1 and g_2 (Gram-Schmidt); the identity when P = 2.

    A missing direction (T = 1, zero gradients, or g_2 parallel to g_1 up to ``rtol``) is a zero row.
    """
    P = G.shape[1]
    if P == 2:
        return torch.eye(2, dtype=G.dtype)
    basis = torch.zeros(2, P, dtype=G.dtype)
    for k in range(min(2, G.shape[0])):
        v = G[k] - (basis[:k] @ G[k]) @ basis[:k]
        n = v.norm()
        if n > rtol * float(G[k].norm()):
            basis[k] = v / n
    return basis


def diagnose(G: Tensor, d: Tensor, step: int = 0, space: str = "params") -> ConflictRecord:
    """One :class:`ConflictRecord` from G (T, P) and the update d (P,)."""
    G = G.detach().double().cpu()
    d = d.detach().double().cpu().reshape(-1)
    if d.shape != (G.shape[1],):
        raise ValueError(f"update d has shape {tuple(d.shape)} but G {tuple(G.shape)} needs ({G.shape[1]},)")
    basis = plane_basis(G)
    return ConflictRecord(step=step, cosine=cosine_matrix(G).float(),
                          conflict_fraction=float(conflict_stats(G)["conflict_fraction"]),
                          norms=G.norm(dim=1).float(), update_cosine=update_cosines(G, d).float(),
                          plane=(G @ basis.T).float(), update_plane=(basis @ d).float(), space=space)


class ConflictMonitor(Callback):
    """Record :class:`ConflictRecord` every ``every`` steps (see the module docstring).

    ``probe`` is the (x, targets) batch used for loss-weighting methods; the panel
    passes the first examples of the training set. Without a probe, steps of
    loss-weighting methods are skipped.
    """

    def __init__(self, every: int = 5, probe: tuple[Tensor, Mapping[str, Tensor]] | None = None):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every, self.probe = every, probe
        self.records: list[ConflictRecord] = []

    def clear(self) -> None:
        self.records.clear()

    def on_step(self, trainer: Trainer, result: StepResult) -> None:
        if result.step % self.every != 0:
            return
        info = result.info
        if info.grads is not None and info.direction is not None:
            space = getattr(trainer.balancer, "on", "params")
            self.records.append(diagnose(info.grads, info.direction, result.step, space))
        elif self.probe is not None and info.weights is not None:
            G = self.probe_gradients(trainer)
            w = info.weights.detach().to(G.device, G.dtype)
            self.records.append(diagnose(G, w @ G, result.step, "params"))

    def probe_gradients(self, trainer: Trainer) -> Tensor:
        """G (T, P) w.r.t. the shared parameters on the probe batch, at the current parameters."""
        x, targets = self.probe
        device = trainer.device
        x = x.to(device)
        targets = {n: y.to(device) for n, y in targets.items()}
        losses, _ = trainer.losses(x, targets)
        return task_gradients(losses, trainer.model.shared_parameters(), retain_graph=False)

    # -- series for plots and checks ------------------------------------------
    @property
    def steps(self) -> list[int]:
        return [r.step for r in self.records]

    def conflict_fractions(self) -> list[float]:
        return [r.conflict_fraction for r in self.records]

    def update_cosine_matrix(self) -> Tensor:
        """(N, T) cos(d, g_i) at every logged step."""
        if not self.records:
            return torch.zeros(0, 0)
        return torch.stack([r.update_cosine for r in self.records])

    def summary(self) -> dict[str, float]:
        """Mean conflict fraction, mean and worst cos(d, g_i) over the logged steps."""
        if not self.records:
            return {"logged_steps": 0, "conflict_fraction": float("nan"), "mean_update_cosine": float("nan"),
                    "min_update_cosine": float("nan")}
        U = self.update_cosine_matrix()
        return {"logged_steps": len(self.records),
                "conflict_fraction": sum(self.conflict_fractions()) / len(self.records),
                "mean_update_cosine": float(U.mean()), "min_update_cosine": float(U.min())}


__all__ = ["ConflictMonitor", "ConflictRecord", "diagnose", "plane_basis", "update_cosines"]
