"""Hard parameter sharing (Caruana, 1997): a shared trunk, then one tower and head per task.

The split depth k decides how much is shared. The body is a stack of L blocks;
the first k are shared by every task and the other L - k are copied per task:

    z = block_k(...block_1(x))            shared
    ŷ_t = head_t(block_L^t(...block_{k+1}^t(z)))   per task

k = 0 gives separate networks per task (the single-task baselines trained side by
side); k = L shares everything but the heads.
"""
from __future__ import annotations

from typing import Callable, Sequence

from torch import Tensor, nn

from ..tasks import Task, TaskSet
from .base import MTLOutput, MultiTaskModel

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
        return [p for m in (self.towers[name], self.heads[name]) for p in m.parameters() if p.requires_grad]

    def last_shared_parameters(self) -> list[nn.Parameter]:
        if self.split == 0:
            return []
        return [p for p in self.trunk[-1].parameters() if p.requires_grad][:1]

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x, self.in_shape)
        z = self.trunk(x)
        return MTLOutput({n: self.heads[n](self.towers[n](z)) for n in self.tasks}, z)
