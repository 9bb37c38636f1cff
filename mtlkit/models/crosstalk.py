"""Cross-talk (survey §2.1): one column of layers per task, with learned mixing between the columns.

Every task keeps its own copy of the body's blocks. After every block but the
last, a *unit* mixes the T task streams; what the unit is names the method:

    cross-stitch:  x̃_i = Σ_j α_ij x_j                       (a T×T matrix α per unit)
    NDDR:          x̃_i = ReLU(BN(W_i [x_1; ...; x_T]))       (a 1×1 conv / linear per task)
    sluice:        cross-stitch on subspaces of every layer, plus a learned
                   mix β of the layers' outputs as each task's readout

Because a unit sends every column's features to every task, the blocks before
the last unit are reached by every task's loss (shared); the last block of each
column and the heads are task-specific (for NDDR also each task's layer in the
last unit). There is no single representation that
every task reads, so z is None (use ``on="params"`` with gradient balancers).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ..tasks import Task, TaskSet
from .base import MTLOutput, MultiTaskModel, params_of, probe_shapes
from .sharing import BodyFactory, lenet_body, linear_head, mlp_body


def stitch_init(n: int, self_weight: float = 0.9, other_weight: float = 0.1) -> Tensor:
    """(n, n) matrix with ``self_weight`` on the diagonal and ``other_weight`` elsewhere, rows summing to 1."""
    a = torch.full((n, n), other_weight) + (self_weight - other_weight) * torch.eye(n)
    return a / a.sum(1, keepdim=True)


class CrossTalkModel(MultiTaskModel):
    """Per-task columns of ``body`` blocks; ``make_unit(shape)`` mixes the streams after each block but the last."""

    def __init__(self, tasks: TaskSet, body: BodyFactory, head: Callable[[Task], nn.Module],
                 in_shape: tuple[int, ...]):
        super().__init__(tasks)
        self.in_shape = tuple(in_shape)
        self.columns = nn.ModuleDict({n: nn.ModuleList(body()) for n in tasks})
        shapes = probe_shapes(self.columns[tasks.names[0]], self.in_shape)
        self.units = nn.ModuleList(self.make_unit(shape) for shape in shapes[:-1])
        self.heads = nn.ModuleDict({n: head(tasks[n]) for n in tasks})

    def make_unit(self, shape: tuple[int, ...]) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def mlp(cls, tasks: TaskSet, in_dim: int, widths: Sequence[int] = (64, 64, 32), **kwargs) -> "CrossTalkModel":
        """Columns of Linear + ReLU blocks; a unit after every hidden layer but the last."""
        return cls(tasks, mlp_body(in_dim, widths), linear_head(widths[-1]), (in_dim,), **kwargs)

    @classmethod
    def lenet(cls, tasks: TaskSet, in_channels: int = 1, image_size: int = 36, **kwargs) -> "CrossTalkModel":
        """Columns of the MultiMNIST LeNet; units after both conv blocks (on feature maps, then flat)."""
        return cls(tasks, lenet_body(in_channels, image_size=image_size), linear_head(50),
                   (in_channels, image_size, image_size), **kwargs)

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x, self.in_shape)
        feats = [x] * len(self.tasks)
        for depth in range(len(self.units) + 1):
            feats = [column[depth](f) for column, f in zip(self.columns.values(), feats)]
            if depth < len(self.units):
                feats = self.units[depth](feats)
        return MTLOutput({n: self.heads[n](f) for n, f in zip(self.tasks, feats)}, None)

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.tasks[name]
        return params_of(self.columns[name][-1], self.heads[name])


class CrossStitchUnit(nn.Module):
    """x̃_i = Σ_j α_ij x_j over T streams of the same shape."""

    def __init__(self, num_tasks: int):
        super().__init__()
        self.alpha = nn.Parameter(stitch_init(num_tasks))

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        return list(torch.einsum("ij,j...->i...", self.alpha, torch.stack(feats)).unbind(0))


class CrossStitch(CrossTalkModel):
    """Cross-stitch networks: learned linear combinations of the task columns' activations.

        x̃_i^l = Σ_j α_ij^l x_j^l,   α^l ∈ R^{T×T},   α^l initialised to 0.9 (self) / 0.1 (others), rows normalised

    α near the identity keeps the columns apart (separate networks); α with equal
    rows makes them share everything. :meth:`alphas` returns the learned matrices.

    I. Misra, A. Shrivastava, A. Gupta, M. Hebert, "Cross-stitch Networks for
    Multi-task Learning", CVPR 2016, arXiv 1604.03539.
    """

    def make_unit(self, shape: tuple[int, ...]) -> nn.Module:
        return CrossStitchUnit(len(self.tasks))

    def alphas(self) -> Tensor:
        """The α matrices (units, T, T), detached: row i says how task i's stream mixes the others."""
        return torch.stack([u.alpha.detach() for u in self.units])

    def sharing_summary(self) -> dict[str, float]:
        """α_ij per unit: how much task i's stream takes from task j's."""
        tasks = list(self.tasks)
        return {f"unit {u + 1}: α[{tasks[i]}←{tasks[j]}]": float(a[i, j])
                for u, a in enumerate(self.alphas()) for i in range(len(tasks)) for j in range(len(tasks))}


class NDDRUnit(nn.Module):
    """Per task: concatenate the T streams along channels, 1×1 conv (or linear) back to C, BN, ReLU."""

    def __init__(self, num_tasks: int, shape: tuple[int, ...], self_weight: float = 0.9, other_weight: float = 0.1):
        super().__init__()
        channels, spatial = shape[0], len(shape) - 1
        if spatial not in (0, 2):
            raise ValueError(f"NDDR units take (C,) or (C, H, W) features, got shape {shape}")
        mix = stitch_init(num_tasks, self_weight, other_weight)
        self.layers = nn.ModuleList()
        for i in range(num_tasks):
            reduce = nn.Conv2d(num_tasks * channels, channels, 1) if spatial else nn.Linear(num_tasks * channels, channels)
            with torch.no_grad():  # "diagonal" initialisation of the paper: a weighted identity per stream
                weight = torch.cat([mix[i, j] * torch.eye(channels) for j in range(num_tasks)], 1)
                reduce.weight.copy_(weight.view_as(reduce.weight))
                reduce.bias.zero_()
            norm = nn.BatchNorm2d(channels) if spatial else nn.BatchNorm1d(channels)
            self.layers.append(nn.Sequential(reduce, norm, nn.ReLU()))

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        joined = torch.cat(feats, 1)
        if self.training and joined.dim() == 2 and joined.shape[0] < 2:
            raise ValueError(f"NDDR's batch normalisation needs at least 2 examples per training batch of vector "
                             f"features, got a batch of {joined.shape[0]}: use batch_size >= 2, or model.eval() "
                             f"to predict single examples")
        return [layer(joined) for layer in self.layers]


class NDDR(CrossTalkModel):
    """NDDR-CNN: neural discriminative dimensionality reduction between the task columns.

        x̃_i^l = ReLU(BN(W_i^l [x_1^l; ...; x_T^l])),   W_i^l a 1×1 conv (feature maps) or linear map (vectors)

    W_i^l starts as the "diagonal" initialisation of the paper: 0.9·I on task i's
    own channels and 0.1·I on the others' (rows normalised).

    Y. Gao, J. Ma, M. Zhao, W. Liu, A. L. Yuille, "NDDR-CNN: Layerwise Feature Fusing
    in Multi-Task CNNs by Neural Discriminative Dimensionality Reduction", CVPR 2019,
    arXiv 1801.08297.
    """

    def make_unit(self, shape: tuple[int, ...]) -> nn.Module:
        return NDDRUnit(len(self.tasks), shape)

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        """As for every cross-talk model, plus task ``name``'s layer in the last unit (it feeds only that task)."""
        last = [self.units[-1].layers[self.tasks.index(name)]] if len(self.units) else []
        return params_of(*last) + super().task_parameters(name)


class Sluice(MultiTaskModel):
    """Sluice networks: cross-stitch on subspaces of every layer, and a learned mix of layers per task.

    Each column has L layers of width d; layer l's output of task t splits into G
    subspaces h_{t,g}^l (d/G units each). One matrix α^l ∈ R^{TG×TG} mixes all
    subspaces of all tasks, and task t reads out a mix of every layer:

        h̃_{t,g}^l = Σ_{s,k} α^l_{(t,g),(s,k)} h_{s,k}^l,      r_t = Σ_l β_{t,l} h̃_t^l,      ŷ_t = head_t(r_t)

    α starts at 0.9 self / 0.1 others (rows normalised), β_t uniform. Simplification:
    the paper's subspace-orthogonality penalty is left out.

    S. Ruder, J. Bingel, I. Augenstein, A. Søgaard, "Latent Multi-task Architecture
    Learning", AAAI 2019, arXiv 1705.08142.
    """

    def __init__(self, tasks: TaskSet, in_dim: int, width: int = 64, depth: int = 3, subspaces: int = 2):
        super().__init__(tasks)
        if width % subspaces:
            raise ValueError(f"width {width} must be divisible by the number of subspaces {subspaces}")
        self.in_shape, self.subspaces = (in_dim,), subspaces
        body = mlp_body(in_dim, [width] * depth)
        self.columns = nn.ModuleDict({n: nn.ModuleList(body()) for n in tasks})
        self.alpha = nn.ParameterList(nn.Parameter(stitch_init(len(tasks) * subspaces)) for _ in range(depth))
        self.beta = nn.ParameterDict({n: nn.Parameter(torch.full((depth,), 1.0 / depth)) for n in tasks})
        self.heads = nn.ModuleDict({n: nn.Linear(width, tasks[n].out_dim) for n in tasks})

    @classmethod
    def mlp(cls, tasks: TaskSet, in_dim: int, width: int = 64, depth: int = 3, subspaces: int = 2) -> "Sluice":
        return cls(tasks, in_dim, width, depth, subspaces)

    def _mix(self, alpha: Tensor, feats: list[Tensor]) -> Tensor:
        T, G = len(feats), self.subspaces
        h = torch.stack(feats)  # (T, B, d)
        parts = h.unflatten(2, (G, -1)).transpose(1, 2).reshape(T * G, h.shape[1], -1)  # (T·G, B, d/G)
        mixed = torch.einsum("ij,j...->i...", alpha, parts)
        return mixed.reshape(T, G, h.shape[1], -1).transpose(1, 2).flatten(2)  # (T, B, d)

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x, self.in_shape)
        feats, layers = [x] * len(self.tasks), []
        for depth, alpha in enumerate(self.alpha):
            mixed = self._mix(alpha, [column[depth](f) for column, f in zip(self.columns.values(), feats)])
            layers.append(mixed)
            feats = list(mixed.unbind(0))
        stacked = torch.stack(layers, 1)  # (T, L, B, d)
        outputs = {n: self.heads[n](torch.einsum("l,lbd->bd", self.beta[n], stacked[t]))
                   for t, n in enumerate(self.tasks)}
        return MTLOutput(outputs, None)

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.tasks[name]
        return [self.beta[name], *params_of(self.heads[name])]

    def alphas(self) -> Tensor:
        """The α matrices (L, T·G, T·G), detached; index (t, g) is t·G + g."""
        return torch.stack([a.detach() for a in self.alpha])

    def betas(self) -> Tensor:
        """The layer mixes β (T, L), detached."""
        return torch.stack([self.beta[n].detach() for n in self.tasks])

    def sharing_summary(self) -> dict[str, float]:
        """β per task and layer: how much each layer's output feeds the task's prediction."""
        return {f"β[{t}, layer {k + 1}]": float(b) for t, row in zip(self.tasks, self.betas()) for k, b in enumerate(row)}
