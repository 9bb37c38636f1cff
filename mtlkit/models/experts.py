"""Conditional architectures (survey §2.6): mixtures of experts with one softmax gate per task.

MMoE: E shared experts; task t mixes them with its own gate, computed from x:

    g_t(x) = softmax(W_t x) ∈ Δ^E,      f_t(x) = Σ_e g_t(x)_e · expert_e(x),      ŷ_t = tower_t(f_t(x))

CGC / PLE: each task also owns experts; task t's gate mixes its own experts and
the shared ones. PLE stacks L such extraction levels; below the top, a shared
gate mixes every expert into the input of the next level's shared experts.

Both record the last forward's gate weights; :meth:`gate_usage` averages them
over the batch. z is the shared experts' outputs (for PLE with L ≥ 2, together
with the tasks' inputs to the top level): what the task-specific parts read.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..tasks import TaskSet
from .base import MTLOutput, MultiTaskModel, bottleneck, params_of


def _mlp(in_dim: int, widths: Sequence[int]) -> nn.Sequential:
    dims = [in_dim, *widths]
    return nn.Sequential(*(m for a, b in zip(dims[:-1], dims[1:]) for m in (nn.Linear(a, b), nn.ReLU())))


def _mix(gate: nn.Module, inp: Tensor, experts: Tensor) -> tuple[Tensor, Tensor]:
    """Gate weights g (B, E) from ``inp`` and the mixture Σ_e g_e experts[:, e] (B, d)."""
    g = torch.softmax(gate(inp), dim=1)
    return torch.einsum("be,bed->bd", g, experts), g


class GatedExperts(MultiTaskModel):
    """What MMoE and PLE share: towers and heads per task, and the gates' usage."""

    def __init__(self, tasks: TaskSet, expert_dim: int, tower_widths: Sequence[int]):
        super().__init__(tasks)
        self.towers = nn.ModuleDict({n: _mlp(expert_dim, tower_widths) for n in tasks})
        out = tower_widths[-1] if tower_widths else expert_dim
        self.heads = nn.ModuleDict({n: nn.Linear(out, tasks[n].out_dim) for n in tasks})
        self.last_gates: dict[str, Tensor] = {}

    def _predict(self, name: str, features: Tensor, gates: Tensor) -> Tensor:
        self.last_gates[name] = gates.detach()
        return self.heads[name](self.towers[name](features))

    def gate_usage(self) -> dict[str, Tensor]:
        """Task -> its gate's mean weight per expert over the last batch (sums to 1)."""
        if not self.last_gates:
            raise RuntimeError(f"{type(self).__name__}.gate_usage needs a forward pass first")
        return {n: g.mean(0) for n, g in self.last_gates.items()}

    def sharing_summary(self) -> dict[str, float]:
        """Each task's mean gate weight per expert over the last batch ({} before any forward pass)."""
        if not self.last_gates:
            return {}
        return {f"gate {t} → expert {e + 1}": float(g) for t, u in self.gate_usage().items() for e, g in enumerate(u)}


class MMoE(GatedExperts):
    """Multi-gate mixture-of-experts: shared experts, one softmax gate per task (see module docstring).

    J. Ma, Z. Zhao, X. Yi, J. Chen, L. Hong, E. H. Chi, "Modeling Task Relationships in
    Multi-task Learning with Multi-gate Mixture-of-Experts", KDD 2018 (no arXiv version;
    doi 10.1145/3219819.3220007).
    """

    def __init__(self, tasks: TaskSet, in_dim: int, num_experts: int = 4, expert_widths: Sequence[int] = (32,),
                 tower_widths: Sequence[int] = (16,)):
        if num_experts < 1:
            raise ValueError(f"num_experts must be >= 1, got {num_experts}")
        super().__init__(tasks, expert_widths[-1], tower_widths)
        self.in_shape = (in_dim,)
        self.experts = nn.ModuleList(_mlp(in_dim, expert_widths) for _ in range(num_experts))
        self.gates = nn.ModuleDict({n: nn.Linear(in_dim, num_experts) for n in tasks})

    @classmethod
    def mlp(cls, tasks: TaskSet, in_dim: int, num_experts: int = 4, expert_widths: Sequence[int] = (32,),
            tower_widths: Sequence[int] = (16,)) -> "MMoE":
        return cls(tasks, in_dim, num_experts, expert_widths, tower_widths)

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x, self.in_shape)
        z, (experts,) = bottleneck([torch.stack([e(x) for e in self.experts], 1)])  # (B, E, d)
        return MTLOutput({n: self._predict(n, *_mix(self.gates[n], x, experts)) for n in self.tasks}, z)

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.tasks[name]
        return params_of(self.gates[name], self.towers[name], self.heads[name])


class PLE(GatedExperts):
    """Progressive layered extraction; with one level it is CGC (customized gate control).

    Level l has k_t experts per task and k_s shared experts. Task t's gate mixes
    [task t's experts; shared experts] into task t's input of level l+1; below
    the top level a shared gate mixes [every expert] into the shared experts'
    input of level l+1. The top level's task mixtures feed the towers.

    H. Tang, J. Liu, M. Zhao, X. Gong, "Progressive Layered Extraction (PLE): A Novel
    Multi-Task Learning (MTL) Model for Personalized Recommendations", RecSys 2020
    (no arXiv version; doi 10.1145/3383313.3412236).
    """

    def __init__(self, tasks: TaskSet, in_dim: int, levels: int = 1, task_experts: int = 1, shared_experts: int = 2,
                 expert_widths: Sequence[int] = (32,), tower_widths: Sequence[int] = (16,)):
        if levels < 1 or task_experts < 1 or shared_experts < 1:
            raise ValueError(f"levels, task_experts and shared_experts must be >= 1, got {levels}, {task_experts}, "
                             f"{shared_experts}")
        super().__init__(tasks, expert_widths[-1], tower_widths)
        self.in_shape = (in_dim,)
        T, d = len(tasks), expert_widths[-1]
        self.levels = nn.ModuleList()
        for level in range(levels):
            width = in_dim if level == 0 else d
            parts = nn.ModuleDict({
                "task_experts": nn.ModuleDict({n: nn.ModuleList(_mlp(width, expert_widths) for _ in range(task_experts))
                                               for n in tasks}),
                "shared_experts": nn.ModuleList(_mlp(width, expert_widths) for _ in range(shared_experts)),
                "task_gates": nn.ModuleDict({n: nn.Linear(width, task_experts + shared_experts) for n in tasks})})
            if level < levels - 1:
                parts["shared_gate"] = nn.Linear(width, T * task_experts + shared_experts)
            self.levels.append(parts)

    @classmethod
    def mlp(cls, tasks: TaskSet, in_dim: int, levels: int = 1, task_experts: int = 1, shared_experts: int = 2,
            expert_widths: Sequence[int] = (32,), tower_widths: Sequence[int] = (16,)) -> "PLE":
        return cls(tasks, in_dim, levels, task_experts, shared_experts, expert_widths, tower_widths)

    @staticmethod
    def _run(experts: nn.ModuleList, inp: Tensor) -> Tensor:
        return torch.stack([e(inp) for e in experts], 1)

    def _extract(self, level: nn.ModuleDict, task_in: list[Tensor], shared_in: Tensor
                 ) -> tuple[list[Tensor], Tensor]:
        """One level below the top: the tasks' and the shared inputs of the next level."""
        shared = self._run(level["shared_experts"], shared_in)
        own = [self._run(level["task_experts"][n], h) for n, h in zip(self.tasks, task_in)]
        task_out = [_mix(level["task_gates"][n], h, torch.cat([e, shared], 1))[0]
                    for n, h, e in zip(self.tasks, task_in, own)]
        shared_out = _mix(level["shared_gate"], shared_in, torch.cat([*own, shared], 1))[0]
        return task_out, shared_out

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x, self.in_shape)
        task_in, shared_in = [x] * len(self.tasks), x
        for level in self.levels[:-1]:
            task_in, shared_in = self._extract(level, task_in, shared_in)
        top = self.levels[-1]
        learned_inputs = task_in if len(self.levels) > 1 else []
        z, views = bottleneck([*learned_inputs, self._run(top["shared_experts"], shared_in)])
        shared = views[-1]
        if learned_inputs:
            task_in = views[:-1]
        outputs = {}
        for n, h in zip(self.tasks, task_in):
            experts = torch.cat([self._run(top["task_experts"][n], h), shared], 1)
            outputs[n] = self._predict(n, *_mix(top["task_gates"][n], h, experts))
        return MTLOutput(outputs, z)

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        """The top level's experts and gate of the task, the gate below it, the tower and the head.

        Lower task experts feed the shared gate, and lower task gates feed those experts, so both
        reach every task's loss: they are shared.
        """
        self.tasks[name]
        top = self.levels[-1]
        below = [self.levels[-2]["task_gates"][name]] if len(self.levels) > 1 else []
        return params_of(*below, top["task_experts"][name], top["task_gates"][name], self.towers[name],
                         self.heads[name])
