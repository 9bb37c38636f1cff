"""Multi-task architectures, selectable by name (for widgets and configs).

Every model follows the contract in :mod:`mtlkit.models.base`.
"""
from __future__ import annotations

from typing import Callable

from ..registry import Registry
from .base import MTLOutput, MultiTaskModel
from .padnet import DenseHardSharing, PADNet
from .sharing import HardSharing, lenet_body, linear_head, mlp_body

MODELS: Registry[Callable[..., MultiTaskModel]] = Registry("architecture")
MODELS.add("hard", HardSharing.mlp)
MODELS.add("hard_cnn", HardSharing.lenet)
MODELS.add("dense_hard", DenseHardSharing)
MODELS.add("padnet", PADNet)

__all__ = ["MODELS", "HardSharing", "MTLOutput", "MultiTaskModel", "lenet_body", "linear_head", "mlp_body"]
