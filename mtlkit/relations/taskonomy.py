"""A Taskonomy-style transfer matrix: how well an encoder trained on task A serves task B.

For every source task A train a single-task network on A; freeze its encoder E_A
(every layer but the head). For every target task B fit a small readout r_{A→B}
(one linear layer) on E_A's features of the training inputs, and measure B's test
loss through it:

    L[A, B] = L_B(r_{A→B}(E_A(x)))                       (raw transfer loss)
    N[A, B] = L[B, B] / L[A, B]                          (normalised by B's own encoder)

N[B, B] = 1; N[A, B] close to 1 says A's features are as good for B as B's own;
much less than 1, that they miss what B needs. Cost: T encoder trainings and T²
readouts (cheap: linear, on frozen features).

Simplification: Taskonomy normalises with the Analytic Hierarchy Process (pairwise
win rates of sources over test examples) and builds the taxonomy by binary integer
programming; here the normalisation is the ratio to the target's own encoder, and
grouping goes through :mod:`mtlkit.relations.grouping`.

A. Zamir, A. Sax, W. Shen, L. Guibas, J. Malik, S. Savarese, "Taskonomy: Disentangling
Task Transfer Learning", CVPR 2018, arXiv 1804.08328.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from ..config import seed_everything
from ..data.base import MultiTaskDataset
from ..models.sharing import HardSharing
from ..train import Trainer
from .base import Affinity, fit_readout


@dataclass(frozen=True)
class TransferMatrix:
    """raw[A, B]: target B's test loss through source A's frozen encoder; normalised = raw[B, B] / raw[A, B]."""

    tasks: tuple[str, ...]
    raw: Tensor
    runs: int
    seconds: float

    @property
    def normalised(self) -> Tensor:
        return self.raw.diagonal()[None, :] / self.raw

    def affinity(self) -> Affinity:
        """The normalised matrix as an affinity (row: source, column: target)."""
        return Affinity("transfer", self.tasks, self.normalised, self.runs, self.seconds)


def transfer_matrix(train: MultiTaskDataset, test: MultiTaskDataset, steps: int, widths: Sequence[int] = (32, 2),
                    lr: float = 3e-3, batch_size: int = 32, seed: int = 0, device=None) -> TransferMatrix:
    """Train an MLP encoder per source task, fit a linear readout per target task on it (module docstring)."""
    if train.x.dim() != 2:
        raise ValueError(f"transfer_matrix trains MLP encoders on vector inputs (N, d), got x of shape "
                         f"{tuple(train.x.shape)}")
    names = tuple(train.tasks.names)
    T = len(names)
    raw = torch.zeros(T, T)
    start = time.perf_counter()
    for a, source in enumerate(names):
        encoder = _train_encoder(train.select_tasks([source]), steps, widths, lr, batch_size, seed, device)
        with torch.no_grad():
            f_train, f_test = encoder(train.x.to(device or "cpu")), encoder(test.x.to(device or "cpu"))
        for b, target in enumerate(names):
            task = train.tasks[target]
            head = fit_readout(f_train, train.targets[target].to(f_train.device), task)
            with torch.no_grad():
                raw[a, b] = task.loss(head(f_test), test.targets[target].to(f_test.device)).cpu()
    return TransferMatrix(names, raw, T, time.perf_counter() - start)


def _train_encoder(data: MultiTaskDataset, steps: int, widths: Sequence[int], lr: float, batch_size: int, seed: int,
                   device) -> torch.nn.Module:
    seed_everything(seed)
    model = HardSharing.mlp(data.tasks, data.x.shape[1], widths)
    Trainer(model, "equal", lr=lr, batch_size=batch_size, seed=seed, device=device).fit(data, steps=steps)
    encoder = model.trunk.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder


__all__ = ["TransferMatrix", "transfer_matrix"]
