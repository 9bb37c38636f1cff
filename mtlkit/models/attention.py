"""MTAN (survey §2.1): one shared trunk, and per task a soft attention mask over every trunk stage.

    f^l = block_l(f^{l-1})                                  shared trunk, f^0 = x
    a_t^l = σ(g_t^l([f^l ; P_t^l(p_t^{l-1})]))             task t's mask at stage l (values in (0, 1))
    p_t^l = a_t^l ⊙ f^l,      ŷ_t = head_t(p_t^L)

g_t^l is two 1×1 convolutions (linear maps on vectors) with a ReLU between;
P_t^l carries task t's previous attended features to stage l's shape (average
pooling to the new resolution, then a 1×1 conv; a linear map on vectors), and is
absent at the first stage. Simplification: the paper's attention modules use
BN and a 3×3 conv in P; the masks here are the same idea at a smaller size.

z is every trunk stage's output joined (:func:`mtlkit.models.base.bottleneck`):
the masks read all stages, so that is what every task reads.

S. Liu, E. Johns, A. J. Davison, "End-to-End Multi-Task Learning with Attention",
CVPR 2019, arXiv 1803.10704.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ..tasks import Task, TaskSet
from .base import MTLOutput, MultiTaskModel, block_outputs, bottleneck, params_of, probe_shapes
from .sharing import BodyFactory, conv_body, flatten_head, linear_head, mlp_body


def _pointwise(a: int, b: int, spatial: bool) -> nn.Module:
    return nn.Conv2d(a, b, 1) if spatial else nn.Linear(a, b)


class MTAN(MultiTaskModel):
    """Multi-task attention network: shared trunk, task-specific soft attention masks per stage."""

    def __init__(self, tasks: TaskSet, body: BodyFactory, head: Callable[[Task], nn.Module],
                 in_shape: tuple[int, ...]):
        super().__init__(tasks)
        self.in_shape = tuple(in_shape)
        self.trunk = nn.ModuleList(body())
        self.shapes = probe_shapes(self.trunk, self.in_shape)
        if len({len(s) for s in self.shapes}) != 1 or len(self.shapes[0]) not in (1, 3):
            raise ValueError(f"MTAN needs every trunk stage to give vectors or every stage feature maps, "
                             f"got stage shapes {self.shapes}")
        spatial = len(self.shapes[0]) == 3
        channels = [s[0] for s in self.shapes]
        self.attention = nn.ModuleDict({n: nn.ModuleList(
            nn.Sequential(_pointwise(c * (1 if l == 0 else 2), c, spatial), nn.ReLU(), _pointwise(c, c, spatial),
                          nn.Sigmoid())
            for l, c in enumerate(channels)) for n in tasks})
        self.carry = nn.ModuleDict({n: nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(shape[1:]) if spatial else nn.Identity(),
                          _pointwise(prev[0], shape[0], spatial))
            for prev, shape in zip(self.shapes[:-1], self.shapes[1:])) for n in tasks})
        self.heads = nn.ModuleDict({n: head(tasks[n]) for n in tasks})
        self.last_masks: dict[str, list[Tensor]] = {}

    @classmethod
    def mlp(cls, tasks: TaskSet, in_dim: int, widths: Sequence[int] = (64, 64, 32)) -> "MTAN":
        return cls(tasks, mlp_body(in_dim, widths), linear_head(widths[-1]), (in_dim,))

    @classmethod
    def cnn(cls, tasks: TaskSet, in_channels: int = 1, image_size: int = 36, widths: Sequence[int] = (16, 32, 32)
            ) -> "MTAN":
        """A trunk of conv blocks (each halves the resolution), so every mask is an image."""
        final = (widths[-1], image_size // 2 ** len(widths), image_size // 2 ** len(widths))
        return cls(tasks, conv_body(in_channels, widths), flatten_head(final), (in_channels, image_size, image_size))

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x, self.in_shape)
        z, feats = bottleneck(block_outputs(self.trunk, x))
        outputs = {}
        for n in self.tasks:
            masks, p = [], None
            for stage, f in enumerate(feats):
                inp = f if p is None else torch.cat([f, self.carry[n][stage - 1](p)], 1)
                masks.append(self.attention[n][stage](inp))
                p = masks[-1] * f
            outputs[n] = self.heads[n](p)
            self.last_masks[n] = [m.detach() for m in masks]
        return MTLOutput(outputs, z)

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.tasks[name]
        return params_of(self.attention[name], self.carry[name], self.heads[name])

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return params_of(self.trunk[-1])[:1]

    def masks(self, x: Tensor) -> dict[str, list[Tensor]]:
        """Task -> one attention mask per stage, (B, C, H, W) or (B, C), for inputs ``x`` (no gradients)."""
        with torch.no_grad():
            self(x)
        return {n: list(m) for n, m in self.last_masks.items()}
