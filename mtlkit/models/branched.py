"""A branched network built from a task grouping: one shared trunk per group of tasks (survey §2.5, §4.1).

Given a partition of the tasks into groups G_1, ..., G_k, every group gets a trunk
of its own and every task a head on its group's trunk:

    ŷ_t = head_t(trunk_{g(t)}(x)),   g(t) = the group holding task t

One group holding every task is hard parameter sharing; one group per task is
single-task learning. Standley et al. train each chosen group as its own network
exactly like this, and TAG (Fifty et al.) does the same with the groups its
affinities select (see :mod:`mtlkit.relations`).

Contract (:mod:`mtlkit.models.base`): the trunks of groups with two or more tasks are
the shared parameters; a group of one task is that task's own network, so its trunk
is among ``task_parameters``. z joins the outputs of the multi-task trunks, which the
heads read through views (:func:`~mtlkit.models.base.bottleneck`); z is None when no
group has two tasks.

T. Standley, A. Zamir, D. Chen, L. Guibas, J. Malik, S. Savarese, "Which Tasks Should
Be Learned Together in Multi-task Learning?", ICML 2020, arXiv 1905.07553.
C. Fifty, E. Amid, Z. Zhao, T. Yu, R. Anil, C. Finn, "Efficiently Identifying Task
Groupings for Multi-Task Learning", NeurIPS 2021, arXiv 2109.04617.
"""
from __future__ import annotations

from typing import Callable, Sequence

from torch import Tensor, nn

from ..tasks import Task, TaskSet
from .base import MTLOutput, MultiTaskModel, bottleneck, params_of
from .sharing import BodyFactory, linear_head, mlp_body


def check_partition(groups: Sequence[Sequence[str]], tasks: TaskSet) -> list[tuple[str, ...]]:
    """``groups`` as tuples of task names, after checking that every task is in exactly one non-empty group."""
    out = [tuple(g) for g in groups]
    if any(len(g) == 0 for g in out):
        raise ValueError(f"every group needs at least one task, got groups {out}")
    seen = [n for g in out for n in g]
    for n in seen:
        tasks[n]  # unknown names raise a KeyError listing the known tasks
    twice = sorted({n for n in seen if seen.count(n) > 1})
    missing = [n for n in tasks if n not in seen]
    if twice or missing:
        raise ValueError(f"groups must put every task in exactly one group; in two or more: {twice}, "
                         f"in none: {missing}; got groups {out}")
    return out


class BranchedNetwork(MultiTaskModel):
    """One trunk per group of tasks (``groups``: a partition of the task names), one head per task."""

    def __init__(self, tasks: TaskSet, groups: Sequence[Sequence[str]], body: BodyFactory,
                 head: Callable[[Task], nn.Module], in_shape: tuple[int, ...]):
        super().__init__(tasks)
        self.groups = check_partition(groups, tasks)
        self.in_shape = tuple(in_shape)
        self.group_of = {n: k for k, g in enumerate(self.groups) for n in g}
        self.trunks = nn.ModuleList(nn.Sequential(*body()) for _ in self.groups)
        self.heads = nn.ModuleDict({n: head(tasks[n]) for n in tasks})

    @classmethod
    def mlp(cls, tasks: TaskSet, in_dim: int, groups: Sequence[Sequence[str]] | None = None,
            widths: Sequence[int] = (64, 64, 32)) -> "BranchedNetwork":
        """An MLP trunk per group; ``groups=None`` puts every task in one group (hard sharing)."""
        groups = [tasks.names] if groups is None else groups
        return cls(tasks, groups, mlp_body(in_dim, widths), linear_head(widths[-1]), (in_dim,))

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        k = self.group_of[self.tasks[name].name]
        own_trunk = [self.trunks[k]] if len(self.groups[k]) == 1 else []
        return params_of(*own_trunk, self.heads[name])

    def last_shared_parameters(self) -> list[nn.Parameter]:
        shared = [t for t, g in zip(self.trunks, self.groups) if len(g) > 1]
        return [p for t in shared for p in t[-1].parameters() if p.requires_grad][:1] if shared else []

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x, self.in_shape)
        features = [trunk(x) for trunk in self.trunks]
        multi = [k for k, g in enumerate(self.groups) if len(g) > 1]
        z = None
        if multi:
            z, views = bottleneck([features[k] for k in multi])
            features = list(features)
            for k, view in zip(multi, views):
                features[k] = view
        return MTLOutput({n: self.heads[n](features[self.group_of[n]]) for n in self.tasks}, z)

    def describe(self) -> str:
        """One line per trunk: the tasks it serves and its number of parameters."""
        lines = []
        for k, (g, trunk) in enumerate(zip(self.groups, self.trunks)):
            size = sum(p.numel() for p in trunk.parameters())
            lines.append(f"trunk {k + 1} ({size} parameters) -> {', '.join(g)}")
        return "\n".join(lines)


__all__ = ["BranchedNetwork", "check_partition"]
