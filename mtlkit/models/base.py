"""The multi-task model contract every architecture in mtlkit follows.

    x --shared trunk--> z --head_t--> output_t      for every task t

``forward(x)`` returns an :class:`MTLOutput`: the per-task outputs and the shared
representation ``z`` (``None`` where an architecture has no single shared
representation, e.g. soft sharing). Balancers use ``shared_parameters()`` for
parameter gradients and ``z`` for representation gradients (the MGDA-UB trick);
task-specific parameters always receive their own task's gradient.

The contract, checked by autograd for every registered architecture:

* ``shared_parameters()``: exactly the parameters that more than one task's loss reaches;
* ``task_parameters(t)``: exactly those that only task t's loss reaches;
* ``z``: features every task reads, and the only way the shared parameters reach
  the losses (:func:`bottleneck` builds one from several tensors); ``None`` where
  each task has its own stream (soft sharing, cross-talk, routing).
"""
from __future__ import annotations

from typing import Iterator, Mapping, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from ..tasks import TaskSet


class MTLOutput(NamedTuple):
    outputs: dict[str, Tensor]
    z: Tensor | None


class MultiTaskModel(nn.Module):
    """Base class: task heads live in ``self.heads`` (a ModuleDict keyed by task name).

    By default every parameter outside ``self.heads`` is shared. Architectures
    whose task-specific parameters live elsewhere override ``task_parameters``.
    """

    heads: nn.ModuleDict

    def __init__(self, tasks: TaskSet):
        super().__init__()
        if not isinstance(tasks, TaskSet):
            raise TypeError(f"tasks must be a TaskSet, got {type(tasks).__name__}")
        self.tasks = tasks

    def forward(self, x: Tensor) -> MTLOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        """Parameters only task ``name``'s loss reaches."""
        self.tasks[name]
        return [p for p in self.heads[name].parameters() if p.requires_grad]

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters more than one task's loss reaches (the θ of the balancers)."""
        specific = {id(p) for n in self.tasks for p in self.task_parameters(n)}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in specific]

    def last_shared_parameters(self) -> list[nn.Parameter]:
        """The last shared layer's parameters (GradNorm's W). Default: the last shared tensor."""
        shared = self.shared_parameters()
        return shared[-1:] if shared else []

    def loss_vector(self, x: Tensor, targets: Mapping[str, Tensor], tasks: Sequence[str] | None = None
                    ) -> tuple[Tensor, MTLOutput]:
        """The loss vector on one batch, auxiliary terms included, and the forward pass's output.

        L_t + aux_t for every task t (``tasks=None``: all, and ``targets`` must hold
        exactly the model's tasks) or for the tasks named (a batch labelled for some
        tasks only, as in task scheduling), in that order. Everything that needs a
        model's losses (the Trainer, TAG's lookahead, affinity measurements) asks
        this method, so they all compare the same quantity.
        """
        output = self(x)
        if not isinstance(output, MTLOutput):
            raise TypeError(f"{type(self).__name__}.forward must return an MTLOutput, got {type(output).__name__}")
        if tasks is None:
            self.tasks.check_targets(targets)
            names = list(self.tasks)
        else:
            names = list(tasks)
            missing = [n for n in names if n not in targets]
            if missing or not names:
                raise KeyError(f"no targets for task(s) {missing or names} in this batch (it has {list(targets)})")
        losses = torch.stack([self.tasks[n].loss(output.outputs[n], targets[n]) for n in names])
        aux = self.auxiliary_losses(targets)
        if aux is not None:
            losses = losses + aux[[self.tasks.index(n) for n in names]]
        return losses, output

    def auxiliary_losses(self, targets: Mapping[str, Tensor]) -> Tensor | None:
        """Extra per-task loss terms (T,) from the last forward pass (deep supervision, PAD-Net), or None.

        :meth:`loss_vector` adds them to the task losses, so task t trains on L_t + aux_t.
        ``targets`` may hold only some tasks (task scheduling); terms of the others are not read.
        """
        return None

    def regularizer(self) -> Tensor | None:
        """A task-independent penalty on the parameters (soft sharing, AdaShare), or None.

        The Trainer adds its gradient to every step's update, after the balancer's.
        """
        return None

    def sharing_summary(self) -> dict[str, float]:
        """Named numbers that say what this model learned about sharing ({} where it learns nothing about it).

        Architectures that learn how much to share override it (cross-stitch α,
        sluice β, expert gates, AdaShare's policy, learned split depths, the
        soft-sharing distance); panels and snapshots read it without knowing the class.
        """
        return {}

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def check_input(self, x: Tensor, in_shape: tuple[int, ...]) -> None:
        """Raise a ValueError naming the expected and actual input shapes."""
        if tuple(x.shape[1:]) != tuple(in_shape):
            raise ValueError(f"{type(self).__name__} expects inputs of shape (B, {', '.join(map(str, in_shape))}), "
                             f"got {tuple(x.shape)}")


def params_of(*modules: nn.Module) -> list[nn.Parameter]:
    """The learnable parameters of ``modules``, in order (for ``task_parameters`` overrides)."""
    return [p for m in modules for p in m.parameters() if p.requires_grad]


def probe_shapes(blocks: Sequence[nn.Module], in_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Output shape (without the batch) of each block when ``blocks`` run in sequence on ``in_shape`` inputs."""
    h, shapes = torch.zeros(2, *in_shape), []
    with torch.no_grad():
        for block in blocks:
            h = block(h)
            shapes.append(tuple(h.shape[1:]))
    return shapes


def block_outputs(blocks: Sequence[nn.Module], x: Tensor) -> list[Tensor]:
    """The output of every block when ``blocks`` run in sequence on ``x`` (for per-stage attention or splits)."""
    outputs = []
    for block in blocks:
        x = block(x)
        outputs.append(x)
    return outputs


def bottleneck(features: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
    """Join shared features into one z (B, P) and return z with views of it shaped like ``features``.

    Task-specific parts must read the views, never the originals: then every path from the shared
    parameters to a loss passes through z, which is what representation-gradient balancers need.
    """
    z = torch.cat([f.flatten(1) for f in features], 1)
    views = torch.split(z, [f[0].numel() for f in features], 1)
    return z, [v.view_as(f) for v, f in zip(views, features)]


def iter_named_shared(model: MultiTaskModel) -> Iterator[tuple[str, nn.Parameter]]:
    shared = {id(p) for p in model.shared_parameters()}
    return ((n, p) for n, p in model.named_parameters() if id(p) in shared)


def flat_size(params: list[nn.Parameter]) -> int:
    return int(sum(p.numel() for p in params))


def requires_representation(output: MTLOutput, model: nn.Module) -> Tensor:
    """The shared representation z, or a clear error when the model has none that learns."""
    z = output.z
    if z is None or not z.requires_grad:
        raise ValueError(f"{type(model).__name__} has no shared representation z that depends on learned "
                         "parameters (no shared trunk); use parameter gradients instead")
    return z


__all__ = ["MTLOutput", "MultiTaskModel", "block_outputs", "bottleneck", "flat_size", "iter_named_shared", "params_of", "probe_shapes",
           "requires_representation"]
