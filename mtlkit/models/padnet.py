"""Dense multi-task prediction: a shared encoder-decoder baseline and PAD-Net's prediction distillation.

Both models map an image (B, C_in, H, W) to one dense output per task
((B, out_dim_t, H, W): segmentation logits, a depth map, normals) through the
same small U-Net-style trunk (:class:`DenseTrunk`).

:class:`DenseHardSharing` puts one convolutional head per task on the trunk
(hard parameter sharing for dense tasks).

:class:`PADNet` (Xu, Ouyang, Wang, Sebe, "PAD-Net: Multi-Tasks Guided Prediction-
and-Distillation Network for Simultaneous Depth Estimation and Scene Parsing",
CVPR 2018, arXiv 1805.04409; survey §2.1, prediction distillation) predicts
every task twice:

1. intermediate predictions: per task t, features F_t = branch_t(trunk(x)) and an
   auxiliary prediction P_t^i = aux_head_t(F_t), supervised by the same task's
   loss (deep supervision);
2. multi-modal distillation (the paper's variant C, attention-guided message
   passing): for each receiving task k,

       F_k^o = F_k + Σ_{t≠k} G_k ⊙ (W_{t→k} * F_t),     G_k = σ(W_g^k * F_k)

   where * is a 3×3 convolution and G_k a spatial attention map computed from
   task k's own features, deciding where k listens to the other tasks. The
   message weights W_{t→k} start small (default initialisation × 0.1, our
   choice, as for residual branches): training starts near F_k^o = F_k, so
   untrained messages add little noise;
3. final predictions P_k = head_k(F_k^o).

Deep supervision: the forward pass keeps the intermediate predictions in
``self.intermediate``; :meth:`PADNet.auxiliary_losses` turns them into a (T,)
vector λ · L_t(P_t^i, y_t) that the Trainer adds to each task's loss, so task
t's training loss is L_t(P_t) + λ L_t(P_t^i) as in the paper, and balancers see
it per task.

Contract: ``z`` is the stack of the task feature maps [F_1, ..., F_T] (the last
tensor every task's output depends on), so the trunk and the branches are the
shared parameters; the auxiliary heads, attention gates, message transforms
into task k and the final heads are task-specific. The task feature maps have
``task_width`` channels (half the trunk's by default): the T(T-1) message
convolutions are PAD-Net's main extra cost.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..tasks import TaskSet
from .base import MTLOutput, MultiTaskModel


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """3×3 convolution, batch norm, ReLU; keeps the spatial size."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class DenseTrunk(nn.Module):
    """A small U-Net: (B, C_in, H, W) -> (B, width, H, W); H and W divisible by 4."""

    def __init__(self, in_channels: int = 3, width: int = 16):
        super().__init__()
        c = width
        self.enc1 = nn.Sequential(conv_block(in_channels, c), conv_block(c, c))
        self.enc2 = nn.Sequential(nn.MaxPool2d(2), conv_block(c, 2 * c), conv_block(2 * c, 2 * c))
        self.enc3 = nn.Sequential(nn.MaxPool2d(2), conv_block(2 * c, 4 * c), conv_block(4 * c, 4 * c))
        self.dec2 = conv_block(4 * c + 2 * c, 2 * c)
        self.dec1 = conv_block(2 * c + c, c)

    def forward(self, x: Tensor) -> Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        d2 = self.dec2(torch.cat([F.interpolate(e3, scale_factor=2.0, mode="nearest"), e2], 1))
        return self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0, mode="nearest"), e1], 1))


def dense_head(width: int, out_dim: int) -> nn.Sequential:
    """Per-pixel prediction head: a 3×3 conv block, then a 1×1 conv to ``out_dim`` channels."""
    return nn.Sequential(conv_block(width, width), nn.Conv2d(width, out_dim, 1))


def _check_image(model: MultiTaskModel, x: Tensor, in_channels: int) -> None:
    if x.dim() != 4 or x.shape[1] != in_channels or x.shape[2] % 4 or x.shape[3] % 4:
        raise ValueError(f"{type(model).__name__} expects images of shape (B, {in_channels}, H, W) with H and W "
                         f"divisible by 4, got {tuple(x.shape)}")


class DenseHardSharing(MultiTaskModel):
    """Shared encoder-decoder trunk, one dense head per task; z is the trunk's output (B, width, H, W)."""

    def __init__(self, tasks: TaskSet, in_channels: int = 3, width: int = 16):
        super().__init__(tasks)
        self.in_channels = in_channels
        self.trunk = DenseTrunk(in_channels, width)
        self.heads = nn.ModuleDict({n: dense_head(width, tasks[n].out_dim) for n in tasks})

    def forward(self, x: Tensor) -> MTLOutput:
        _check_image(self, x, self.in_channels)
        z = self.trunk(x)
        return MTLOutput({n: self.heads[n](z) for n in self.tasks}, z)


class PADNet(MultiTaskModel):
    """PAD-Net: intermediate predictions, attention-guided distillation, final predictions (module docstring)."""

    def __init__(self, tasks: TaskSet, in_channels: int = 3, width: int = 16, task_width: int | None = None,
                 aux_weight: float = 1.0):
        super().__init__(tasks)
        if aux_weight < 0:
            raise ValueError(f"aux_weight (λ of the deep supervision) must be >= 0, got {aux_weight}")
        c = task_width or max(width // 2, 1)
        self.in_channels, self.task_width, self.aux_weight = in_channels, c, aux_weight
        names = list(tasks)
        self.trunk = DenseTrunk(in_channels, width)
        self.branches = nn.ModuleDict({n: conv_block(width, c) for n in names})
        self.aux_heads = nn.ModuleDict({n: nn.Conv2d(c, tasks[n].out_dim, 1) for n in names})
        self.gates = nn.ModuleDict({n: nn.Conv2d(c, c, 3, padding=1) for n in names})
        self.messages = nn.ModuleDict({k: nn.ModuleDict({t: nn.Conv2d(c, c, 3, padding=1)
                                                         for t in names if t != k}) for k in names})
        self.heads = nn.ModuleDict({n: dense_head(c, tasks[n].out_dim) for n in names})
        with torch.no_grad():  # distillation starts close to the identity and learns what to pass on
            for conv in (m for k in names for m in self.messages[k].values()):
                conv.weight.mul_(0.1)
                conv.bias.zero_()
        self.intermediate: dict[str, Tensor] = {}

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.tasks[name]
        modules = (self.aux_heads[name], self.gates[name], self.messages[name], self.heads[name])
        return [p for m in modules for p in m.parameters() if p.requires_grad]

    def distill(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        """F_k^o = F_k + Σ_{t≠k} σ(W_g^k * F_k) ⊙ (W_{t→k} * F_t) for every task k."""
        out = {}
        for k, f_k in feats.items():
            gate = torch.sigmoid(self.gates[k](f_k))
            out[k] = f_k + sum((gate * self.messages[k][t](f_t) for t, f_t in feats.items() if t != k),
                               torch.zeros_like(f_k))
        return out

    def forward(self, x: Tensor) -> MTLOutput:
        _check_image(self, x, self.in_channels)
        shared = self.trunk(x)
        z = torch.cat([self.branches[n](shared) for n in self.tasks], dim=1)
        feats = dict(zip(self.tasks, z.split(self.task_width, dim=1)))
        self.intermediate = {n: self.aux_heads[n](f) for n, f in feats.items()}
        distilled = self.distill(feats)
        return MTLOutput({n: self.heads[n](distilled[n]) for n in self.tasks}, z)

    def auxiliary_losses(self, targets: Mapping[str, Tensor]) -> Tensor:
        """(T,) deep-supervision terms λ L_t(P_t^i, y_t) of the last forward pass, in task order (0 without y_t)."""
        if not self.intermediate:
            raise RuntimeError("PADNet.auxiliary_losses needs a forward pass first")
        return self.aux_weight * torch.stack([
            self.tasks[n].loss(self.intermediate[n], targets[n]) if n in targets else self.intermediate[n].new_zeros(())
            for n in self.tasks])


__all__ = ["DenseHardSharing", "DenseTrunk", "PADNet", "conv_block", "dense_head"]
