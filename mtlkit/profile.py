"""What a model costs: parameter count, forward FLOPs and time per forward pass (CPU, and GPU when present).

FLOPs are counted by PyTorch's own ``torch.utils.flop_counter.FlopCounterMode``,
which counts a multiply-add as 2 FLOPs: a Linear layer from ``in`` to ``out``
features on a batch of B costs 2·B·in·out (bias additions and activations are
not counted). Times are the median over repeated forward passes in eval mode
without gradients, after warm-up; on CUDA each pass is synchronised.

:func:`profile_registry` profiles every architecture of a registry such as
``mtlkit.models.MODELS``: each architecture declares the kind of input it takes
(``Architecture.inputs``) and is profiled on the first :class:`Setting` of that
kind (dense scenes, small images, vectors) it builds on and answers with outputs
of the right shape.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from .models import Architecture
from .tasks import TaskSet, classification, regression


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (each shared tensor counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _call(model: nn.Module, x: Tensor):
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    finally:
        model.train(was_training)


def forward_flops(model: nn.Module, x: Tensor) -> int:
    """FLOPs of one forward pass on the batch ``x`` (a multiply-add counts 2)."""
    counter = FlopCounterMode(display=False)
    with counter:
        _call(model, x)
    return int(counter.get_total_flops())


def time_forward(model: nn.Module, x: Tensor, repeats: int = 10, warmup: int = 2) -> float:
    """Median wall time of one forward pass in milliseconds, on the device of ``x``."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    cuda = x.device.type == "cuda"
    times = []
    for i in range(warmup + repeats):
        if cuda:
            torch.cuda.synchronize(x.device)
        start = time.perf_counter()
        _call(model, x)
        if cuda:
            torch.cuda.synchronize(x.device)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


@dataclass
class Profile:
    """One architecture's cost; ``flops`` per example, times per forward of ``batch`` examples."""

    name: str
    setting: str
    params: int
    flops: int
    batch: int
    cpu_ms: float
    gpu_ms: float | None = None

    def row(self) -> dict:
        return {"architecture": self.name, "input": self.setting, "parameters": self.params,
                "MFLOPs / example": self.flops / 1e6, "batch": self.batch, "CPU ms / forward": self.cpu_ms,
                "GPU ms / forward": self.gpu_ms}


def profile_model(model: nn.Module, x: Tensor, name: str = "", setting: str = "", repeats: int = 10,
                  gpu: bool | None = None) -> Profile:
    """Parameters, FLOPs per example (from the first example of x) and CPU (and GPU) ms per forward of x."""
    model = model.cpu()
    x = x.cpu()
    flops = forward_flops(model, x[:1])
    cpu_ms = time_forward(model, x, repeats)
    gpu_ms = None
    if gpu if gpu is not None else torch.cuda.is_available():
        gpu_ms = time_forward(model.cuda(), x.cuda(), repeats)
        model.cpu()
    return Profile(name or type(model).__name__, setting, count_parameters(model), flops, x.shape[0], cpu_ms, gpu_ms)


@dataclass
class Setting:
    """Tasks and an input batch of one kind (``inputs``: an architecture's declared input kind)."""

    name: str
    inputs: str
    tasks: TaskSet
    x: Tensor
    targets: Mapping[str, Tensor] = field(default_factory=dict)

    def fits(self, outputs: Mapping[str, Tensor]) -> bool:
        """True when every task has an output whose shape fits this setting's targets."""
        try:
            for name, task in self.tasks.items():
                task.check(outputs[name], self.targets[name])
        except (KeyError, ValueError):
            return False
        return True


def default_settings(batch: int = 16) -> list[Setting]:
    """Dense scenes (3×32×32), MultiMNIST-sized images (1×36×36) and 16-d vectors, in that order."""
    from .data.scenes import TASKS as SCENE_TASKS
    g = torch.Generator().manual_seed(0)
    dense = Setting("dense 3×32×32", "dense", SCENE_TASKS, torch.rand(batch, 3, 32, 32, generator=g),
                    {"segmentation": torch.zeros(batch, 32, 32, dtype=torch.long),
                     "depth": torch.zeros(batch, 1, 32, 32), "normals": torch.zeros(batch, 3, 32, 32)})
    image_tasks = TaskSet([classification("left", 10), classification("right", 10)])
    image = Setting("image 1×36×36", "image", image_tasks, torch.rand(batch, 1, 36, 36, generator=g),
                    {n: torch.zeros(batch, dtype=torch.long) for n in image_tasks})
    vector_tasks = TaskSet([regression("t1"), regression("t2")])
    vector = Setting("vector 16", "vector", vector_tasks, torch.randn(batch, 16, generator=g),
                     {n: torch.zeros(batch, 1) for n in vector_tasks})
    return [dense, image, vector]


def build(architecture: Architecture, setting: Setting) -> nn.Module:
    """The architecture for the setting's tasks and inputs."""
    return architecture.build(setting.tasks, setting.x.shape[1:])


def profile_registry(registry: Mapping[str, Architecture], settings: list[Setting] | None = None,
                     repeats: int = 10, gpu: bool | None = None, names: Iterable[str] | None = None
                     ) -> tuple[list[Profile], dict[str, str]]:
    """Profile every architecture of ``registry`` (or those in ``names``).

    Returns the profiles, and for each architecture that fitted no setting the reasons, per setting.
    """
    settings = settings or default_settings()
    profiles, skipped = [], {}
    for name in (list(registry) if names is None else list(names)):
        architecture = registry[name]
        reasons = [] if any(s.inputs == architecture.inputs for s in settings) else [
            f"no setting with {architecture.inputs} inputs"]
        for setting in (s for s in settings if s.inputs == architecture.inputs):
            try:
                torch.manual_seed(0)
                model = build(architecture, setting)
                out = _call(model, setting.x)
            except Exception as err:  # noqa: BLE001 - a model that does not fit this setting; try the next
                reasons.append(f"{setting.name}: {type(err).__name__}: {err}")
                continue
            if not setting.fits(getattr(out, "outputs", {})):
                reasons.append(f"{setting.name}: outputs do not fit the tasks")
                continue
            profiles.append(profile_model(model, setting.x, name, setting.name, repeats, gpu))
            break
        else:
            skipped[name] = "; ".join(reasons)
    return profiles, skipped


__all__ = ["Profile", "Setting", "build", "count_parameters", "default_settings", "forward_flops",
           "profile_model", "profile_registry", "time_forward"]
