"""Multi-task architectures, selectable by name (for widgets and configs).

Every model follows the contract in :mod:`mtlkit.models.base`.
"""
from __future__ import annotations

import functools
from typing import Callable

from ..registry import Registry
from .attention import MTAN
from .base import MTLOutput, MultiTaskModel
from .branched import BranchedNetwork
from .crosstalk import NDDR, CrossStitch, Sluice
from .experts import MMoE, PLE
from .learned import AdaShare, LearnedBranching
from .padnet import DenseHardSharing, PADNet
from .routing import TaskRouting
from .sharing import HardSharing, SoftSharing, conv_body, flatten_head, lenet_body, linear_head, mlp_body

MODELS: Registry[Callable[..., MultiTaskModel]] = Registry("architecture")
MODELS.add("hard", HardSharing.mlp)
MODELS.add("hard_cnn", HardSharing.lenet)
MODELS.add("soft", SoftSharing.mlp)
MODELS.add("soft_cnn", SoftSharing.lenet)
MODELS.add("cross_stitch", CrossStitch.mlp)
MODELS.add("cross_stitch_cnn", CrossStitch.lenet)
MODELS.add("sluice", Sluice.mlp)
MODELS.add("nddr", NDDR.mlp)
MODELS.add("nddr_cnn", NDDR.lenet)
MODELS.add("mtan", MTAN.mlp)
MODELS.add("mtan_cnn", MTAN.cnn)
MODELS.add("mmoe", MMoE.mlp)
MODELS.add("cgc", functools.partial(PLE.mlp, levels=1))
MODELS.add("ple", functools.partial(PLE.mlp, levels=2))
MODELS.add("task_routing", TaskRouting.mlp)
MODELS.add("task_routing_cnn", TaskRouting.cnn)
MODELS.add("adashare", AdaShare.mlp)
MODELS.add("adashare_cnn", AdaShare.cnn)
MODELS.add("learned_branching", LearnedBranching.mlp)
MODELS.add("branched", BranchedNetwork.mlp)
MODELS.add("dense_hard", DenseHardSharing)
MODELS.add("padnet", PADNet)

__all__ = ["MMoE", "MODELS", "MTAN", "NDDR", "PLE", "AdaShare", "CrossStitch", "HardSharing", "LearnedBranching",
           "MTLOutput", "MultiTaskModel", "Sluice", "SoftSharing", "TaskRouting", "conv_body", "flatten_head",
           "lenet_body", "linear_head", "mlp_body"]
