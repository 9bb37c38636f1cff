"""Hard parameter sharing (Caruana, 1997): a shared trunk, then one tower and head per task.

The split depth k decides how much is shared. The body is a stack of L blocks;
the first k are shared by every task and the other L - k are copied per task:

    z = block_k(...block_1(x))            shared
    ŷ_t = head_t(block_L^t(...block_{k+1}^t(z)))   per task

k = 0 gives separate networks per task (the single-task baselines trained side by
side); k = L shares everything but the heads.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ..tasks import Task, TaskSet
from .base import MTLOutput, MultiTaskModel, params_of

BodyFactory = Callable[[], Sequence[nn.Module]]


def mlp_body(in_dim: int, widths: Sequence[int]) -> BodyFactory:
    """Factory for an MLP body: one Linear + ReLU block per width."""
    dims = [in_dim, *widths]

    def make() -> list[nn.Module]:
        return [nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in zip(dims[:-1], dims[1:])]
    return make


def lenet_body(in_channels: int = 1, widths: Sequence[int] = (10, 20, 50), image_size: int = 36) -> BodyFactory:
    """Factory for the small LeNet-style CNN of Sener & Koltun (2018) on MultiMNIST."""
    c1, c2, hidden = widths
    flat = c2 * (((image_size - 4) // 2 - 4) // 2) ** 2

    def make() -> list[nn.Module]:
        return [
            nn.Sequential(nn.Conv2d(in_channels, c1, 5), nn.MaxPool2d(2), nn.ReLU()),
            nn.Sequential(nn.Conv2d(c1, c2, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten()),
            nn.Sequential(nn.Linear(flat, hidden), nn.ReLU()),
        ]
    return make


def conv_body(in_channels: int = 1, widths: Sequence[int] = (16, 32, 32)) -> BodyFactory:
    """Factory for a small CNN whose every block keeps a feature map: Conv 3x3 + ReLU + MaxPool 2."""
    dims = [in_channels, *widths]

    def make() -> list[nn.Module]:
        return [nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
                for a, b in zip(dims[:-1], dims[1:])]
    return make


def flatten_head(in_shape: Sequence[int]) -> Callable[[Task], nn.Module]:
    """Factory for a head that flattens a feature map of ``in_shape`` (C, H, W) and applies one Linear."""
    size = math.prod(in_shape)
    return lambda task: nn.Sequential(nn.Flatten(), nn.Linear(size, task.out_dim))


def linear_head(in_dim: int) -> Callable[[Task], nn.Module]:
    """Factory for a linear head with one output per task output dimension."""
    return lambda task: nn.Linear(in_dim, task.out_dim)


class HardSharing(MultiTaskModel):
    """Shared trunk of the first ``split`` blocks; the remaining blocks and a head per task."""

    def __init__(self, tasks: TaskSet, body: BodyFactory, head: Callable[[Task], nn.Module],
                 split: int, in_shape: tuple[int, ...]):
        super().__init__(tasks)
        template = list(body())
        self.depth = len(template)
        if not 0 <= split <= self.depth:
            raise ValueError(f"split depth must be between 0 (separate networks) and {self.depth} "
                             f"(all blocks shared), got {split}")
        self.split = split
        self.in_shape = tuple(in_shape)
        self.trunk = nn.Sequential(*template[:split])
        self.towers = nn.ModuleDict({n: nn.Sequential(*list(body())[split:]) for n in tasks})
        self.heads = nn.ModuleDict({n: head(tasks[n]) for n in tasks})

    @classmethod
    def mlp(cls, tasks: TaskSet, in_dim: int, widths: Sequence[int] = (64, 64, 32), split: int | None = None
            ) -> "HardSharing":
        """An MLP; ``split=None`` shares every hidden layer."""
        split = len(widths) if split is None else split
        return cls(tasks, mlp_body(in_dim, widths), linear_head(widths[-1]), split, (in_dim,))

    @classmethod
    def lenet(cls, tasks: TaskSet, in_channels: int = 1, image_size: int = 36, split: int | None = None
              ) -> "HardSharing":
        """The MultiMNIST CNN; ``split=None`` shares the whole encoder."""
        split = 3 if split is None else split
        return cls(tasks, lenet_body(in_channels, image_size=image_size), linear_head(50), split,
                   (in_channels, image_size, image_size))

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.tasks[name]
        return params_of(self.towers[name], self.heads[name])

    def last_shared_parameters(self) -> list[nn.Parameter]:
        if self.split == 0:
            return []
        return [p for p in self.trunk[-1].parameters() if p.requires_grad][:1]

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x, self.in_shape)
        z = self.trunk(x)
        return MTLOutput({n: self.heads[n](self.towers[n](z)) for n in self.tasks}, z)


class SoftSharing(HardSharing):
    """Soft parameter sharing: one tower per task, tied by a penalty on their differences.

    Every task has a full network of its own (split depth 0); the penalty pulls
    corresponding weights of the towers together instead of forcing them equal:

        l2:    Ω = Σ_{i<j} Σ_layers ||θ_i − θ_j||²                      (Duong et al. 2015)
        trace: Ω = Σ_layers ||[vec θ_1; ...; vec θ_T]||_*   (nuclear norm) (Yang & Hospedales 2017)

    The Trainer adds ``regularizer() = strength · Ω`` to every step. No parameter is
    reached by two tasks' losses, so ``shared_parameters()`` is empty and z is None.

    L. Duong, T. Cohn, S. Bird, P. Cook, "Low Resource Dependency Parsing: Cross-lingual
    Parameter Sharing in a Neural Network Parser", ACL 2015.
    Y. Yang, T. Hospedales, "Trace Norm Regularised Deep Multi-Task Learning", ICLR
    workshop 2017, arXiv 1606.04038.
    """

    PENALTIES = ("l2", "trace")

    def __init__(self, tasks: TaskSet, body: BodyFactory, head: Callable[[Task], nn.Module],
                 in_shape: tuple[int, ...], penalty: str = "l2", strength: float = 1e-2):
        if penalty not in self.PENALTIES:
            raise ValueError(f"penalty must be one of {self.PENALTIES}, got {penalty!r}")
        if strength < 0:
            raise ValueError(f"penalty strength must be >= 0, got {strength}")
        super().__init__(tasks, body, head, 0, in_shape)
        self.penalty_kind, self.strength = penalty, strength

    @classmethod
    def mlp(cls, tasks: TaskSet, in_dim: int, widths: Sequence[int] = (64, 64, 32), penalty: str = "l2",
            strength: float = 1e-2) -> "SoftSharing":
        return cls(tasks, mlp_body(in_dim, widths), linear_head(widths[-1]), (in_dim,), penalty, strength)

    @classmethod
    def lenet(cls, tasks: TaskSet, in_channels: int = 1, image_size: int = 36, penalty: str = "l2",
              strength: float = 1e-2) -> "SoftSharing":
        return cls(tasks, lenet_body(in_channels, image_size=image_size), linear_head(50),
                   (in_channels, image_size, image_size), penalty, strength)

    def sharing_summary(self) -> dict[str, float]:
        """Ω, the towers' distance under the chosen penalty."""
        return {"tower distance Ω": float(self.penalty().detach())}

    def penalty(self) -> Tensor:
        """Ω: how far apart the towers are (0 when all towers are equal under the L2 penalty)."""
        towers = [dict(self.towers[n].named_parameters()) for n in self.tasks]
        total = torch.zeros((), device=next(self.parameters()).device)
        for name in towers[0]:
            W = torch.stack([t[name].flatten() for t in towers])  # (T, P)
            if self.penalty_kind == "trace":
                total = total + torch.linalg.svdvals(W).sum()
            else:
                total = total + (W.unsqueeze(0) - W.unsqueeze(1)).pow(2).sum() / 2
        return total

    def regularizer(self) -> Tensor:
        return self.strength * self.penalty()
