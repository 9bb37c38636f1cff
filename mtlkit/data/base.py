"""An in-memory multi-task dataset: inputs x and one target tensor per task.

Everything in the workbook fits in memory, so batches are index slices of
tensors already on the training device: no DataLoader workers, no copies.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor

from ..tasks import TaskSet

DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def cache_dir() -> Path:
    """Where generated datasets are cached: ``$MTLKIT_DATA`` or the repository's ``data/``."""
    import os
    path = Path(os.environ.get("MTLKIT_DATA", DATA_DIR))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class MultiTaskDataset:
    """x: (N, ...) inputs; targets: task name -> (N, ...) target; tasks: their specs."""

    x: Tensor
    targets: dict[str, Tensor]
    tasks: TaskSet

    def __post_init__(self) -> None:
        self.tasks.check_targets(self.targets)
        n = self.x.shape[0]
        for name, y in self.targets.items():
            if y.shape[0] != n:
                raise ValueError(f"task {name!r}: targets have {y.shape[0]} rows but x has {n}")
        for name, y in [("x", self.x), *self.targets.items()]:
            if y.is_floating_point() and not bool(torch.isfinite(y).all()):
                raise ValueError(f"{'inputs x' if name == 'x' else f'targets of task {name!r}'} contain NaN or inf")

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, idx) -> tuple[Tensor, dict[str, Tensor]]:
        return self.x[idx], {n: y[idx] for n, y in self.targets.items()}

    def to(self, device: torch.device | str) -> "MultiTaskDataset":
        return MultiTaskDataset(self.x.to(device), {n: y.to(device) for n, y in self.targets.items()}, self.tasks)

    def subset(self, idx: Tensor) -> "MultiTaskDataset":
        x, targets = self[idx]
        return MultiTaskDataset(x, targets, self.tasks)

    def select_tasks(self, names) -> "MultiTaskDataset":
        """The same inputs with only the named tasks (in the order given)."""
        tasks = self.tasks.subset(names)
        return MultiTaskDataset(self.x, {n: self.targets[n] for n in tasks}, tasks)

    def split(self, *sizes: int, seed: int = 0) -> tuple["MultiTaskDataset", ...]:
        """Random disjoint subsets of the given sizes (seeded)."""
        if sum(sizes) > len(self) or min(sizes) < 1:
            raise ValueError(f"split sizes {sizes} do not fit a dataset of {len(self)} examples")
        perm = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed)).to(self.x.device)
        out, start = [], 0
        for size in sizes:
            out.append(self.subset(perm[start:start + size]))
            start += size
        return tuple(out)

    def batches(self, batch_size: int, generator: torch.Generator | None = None, shuffle: bool = True
                ) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
        """One epoch of (x, targets) batches; the last batch may be smaller."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        order = order.to(self.x.device)
        for start in range(0, n, batch_size):
            yield self[order[start:start + batch_size]]

    def stream(self, batch_size: int, generator: torch.Generator | None = None
               ) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
        """Endless batches, epoch after epoch, each epoch in a fresh random order."""
        while True:
            yield from self.batches(batch_size, generator)
