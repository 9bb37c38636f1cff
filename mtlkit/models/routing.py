"""Task routing (survey §2.1): shared layers, each task sees only its own fixed random subset of units.

    h_t^l = m_t^l ⊙ block_l(h_t^{l-1}),   h_t^0 = x,   ŷ_t = head_t(h_t^L)

m_t^l ∈ {0, 1}^{C_l} is drawn once, at construction (seeded), with a fraction
``keep`` of ones, over channels for feature maps and units for vectors; it never
learns. Every block is shared, yet each task runs its own route through it, so
there is no representation that all tasks read: z is None.

G. Strezoski, N. van Noord, M. Worring, "Many Task Learning with Task Routing",
ICCV 2019, arXiv 1903.12117.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ..tasks import Task, TaskSet
from .base import MTLOutput, MultiTaskModel, probe_shapes
from .sharing import BodyFactory, conv_body, flatten_head, linear_head, mlp_body


def routing_masks(num_tasks: int, units: int, keep: float, generator: torch.Generator) -> Tensor:
    """(T, units) binary masks, each with round(keep · units) ones (at least one) at random places."""
    ones = max(1, round(keep * units))
    masks = torch.zeros(num_tasks, units)
    for t in range(num_tasks):
        masks[t, torch.randperm(units, generator=generator)[:ones]] = 1.0
    return masks


class TaskRouting(MultiTaskModel):
    """Shared blocks with a fixed random binary unit mask per task and block (see module docstring)."""

    def __init__(self, tasks: TaskSet, body: BodyFactory, head: Callable[[Task], nn.Module],
                 in_shape: tuple[int, ...], keep: float = 0.5, seed: int = 0):
        super().__init__(tasks)
        if not 0 < keep <= 1:
            raise ValueError(f"keep (the fraction of units each task uses) must lie in (0, 1], got {keep}")
        self.in_shape, self.keep, self.seed = tuple(in_shape), keep, seed
        self.trunk = nn.ModuleList(body())
        g = torch.Generator().manual_seed(seed)
        for l, shape in enumerate(probe_shapes(self.trunk, self.in_shape)):
            mask = routing_masks(len(tasks), shape[0], keep, g)
            self.register_buffer(f"mask{l}", mask.view(len(tasks), 1, shape[0], *([1] * (len(shape) - 1))))
        self.heads = nn.ModuleDict({n: head(tasks[n]) for n in tasks})

    @classmethod
    def mlp(cls, tasks: TaskSet, in_dim: int, widths: Sequence[int] = (64, 64, 32), keep: float = 0.5,
            seed: int = 0) -> "TaskRouting":
        return cls(tasks, mlp_body(in_dim, widths), linear_head(widths[-1]), (in_dim,), keep, seed)

    @classmethod
    def cnn(cls, tasks: TaskSet, in_channels: int = 1, image_size: int = 36, widths: Sequence[int] = (16, 32, 32),
            keep: float = 0.5, seed: int = 0) -> "TaskRouting":
        """Conv blocks; the masks switch whole channels off."""
        final = (widths[-1], image_size // 2 ** len(widths), image_size // 2 ** len(widths))
        return cls(tasks, conv_body(in_channels, widths), flatten_head(final), (in_channels, image_size, image_size),
                   keep, seed)

    def masks(self) -> list[Tensor]:
        """Per block, the (T, C) masks (row t: the units task t uses)."""
        return [getattr(self, f"mask{l}").flatten(1) for l in range(len(self.trunk))]

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x, self.in_shape)
        T, B = len(self.tasks), x.shape[0]
        h = x.unsqueeze(0).expand(T, *x.shape).reshape(T * B, *x.shape[1:])
        for l, block in enumerate(self.trunk):
            out = block(h)
            h = (out.view(T, B, *out.shape[1:]) * getattr(self, f"mask{l}")).flatten(0, 1)
        h = h.view(T, B, *h.shape[1:])
        return MTLOutput({n: self.heads[n](h[t]) for t, n in enumerate(self.tasks)}, None)
