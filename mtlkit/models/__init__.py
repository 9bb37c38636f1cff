"""Multi-task architectures, selectable by name (for widgets and configs).

Every model follows the contract in :mod:`mtlkit.models.base`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

from ..registry import Registry
from ..tasks import TaskSet
from .attention import MTAN
from .base import MTLOutput, MultiTaskModel
from .branched import BranchedNetwork
from .crosstalk import NDDR, CrossStitch, Sluice
from .experts import MMoE, PLE
from .learned import AdaShare, LearnedBranching
from .padnet import DenseHardSharing, PADNet
from .routing import TaskRouting
from .sharing import HardSharing, SoftSharing, conv_body, flatten_head, lenet_body, linear_head, mlp_body

#: What an architecture's input is: "vector" (B, D) -> in_dim = D; "image" (B, C, H, W) with
#: image-level tasks -> in_channels = C, image_size = H (square images); "dense" (B, C, H, W)
#: with per-pixel tasks -> in_channels = C (any H, W the trunk can halve twice).
INPUT_KINDS = ("vector", "image", "dense")


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: the factory that builds it and the kind of input it declares."""

    factory: Callable[..., MultiTaskModel]
    inputs: str

    def __post_init__(self) -> None:
        if self.inputs not in INPUT_KINDS:
            raise ValueError(f"inputs must be one of {INPUT_KINDS}, got {self.inputs!r}")

    def input_keywords(self, input_shape: Sequence[int]) -> dict[str, int]:
        """The factory's size keywords for inputs of ``input_shape`` (without the batch dimension)."""
        shape = tuple(input_shape)
        want = 1 if self.inputs == "vector" else 3
        if len(shape) != want:
            raise ValueError(f"a {self.inputs} architecture takes inputs of shape "
                             f"{'(D,)' if want == 1 else '(C, H, W)'} (without the batch), got {shape}")
        if self.inputs == "vector":
            return {"in_dim": shape[0]}
        if self.inputs == "image":
            if shape[1] != shape[2]:
                raise ValueError(f"image architectures take square images, got {shape[1]}×{shape[2]}")
            return {"in_channels": shape[0], "image_size": shape[1]}
        return {"in_channels": shape[0]}

    def build(self, tasks: TaskSet, input_shape: Sequence[int], **options) -> MultiTaskModel:
        """The model for ``tasks`` and inputs of ``input_shape``; ``options`` go to the factory (widths, ...)."""
        return self.factory(tasks, **self.input_keywords(input_shape), **options)


MODELS: Registry[Architecture] = Registry("architecture")
for _name, _factory, _inputs in [
    ("hard", HardSharing.mlp, "vector"), ("hard_cnn", HardSharing.lenet, "image"),
    ("soft", SoftSharing.mlp, "vector"), ("soft_cnn", SoftSharing.lenet, "image"),
    ("cross_stitch", CrossStitch.mlp, "vector"), ("cross_stitch_cnn", CrossStitch.lenet, "image"),
    ("sluice", Sluice.mlp, "vector"), ("nddr", NDDR.mlp, "vector"), ("nddr_cnn", NDDR.lenet, "image"),
    ("mtan", MTAN.mlp, "vector"), ("mtan_cnn", MTAN.cnn, "image"), ("mmoe", MMoE.mlp, "vector"),
    ("cgc", functools.partial(PLE.mlp, levels=1), "vector"), ("ple", functools.partial(PLE.mlp, levels=2), "vector"),
    ("task_routing", TaskRouting.mlp, "vector"), ("task_routing_cnn", TaskRouting.cnn, "image"),
    ("adashare", AdaShare.mlp, "vector"), ("adashare_cnn", AdaShare.cnn, "image"),
    ("learned_branching", LearnedBranching.mlp, "vector"), ("branched", BranchedNetwork.mlp, "vector"),
    ("dense_hard", DenseHardSharing, "dense"), ("padnet", PADNet, "dense"),
]:
    MODELS.add(_name, Architecture(_factory, _inputs))


def build_architecture(name: str, tasks: TaskSet, input_shape: Sequence[int], **options) -> MultiTaskModel:
    """The architecture registered as ``name`` for ``tasks`` and inputs of ``input_shape`` (no batch dimension).

    ``build_architecture("mmoe", data.tasks, data.x.shape[1:], experts=4)``; ``options`` go to its factory.
    """
    return MODELS[name].build(tasks, input_shape, **options)


__all__ = ["INPUT_KINDS", "MMoE", "MODELS", "Architecture", "MTAN", "NDDR", "PLE", "AdaShare", "CrossStitch", "HardSharing", "LearnedBranching",
           "MTLOutput", "MultiTaskModel", "Sluice", "SoftSharing", "TaskRouting", "conv_body", "flatten_head",
           "lenet_body", "linear_head", "build_architecture", "mlp_body"]
