"""Learned architectures (survey §2.5): the network learns which blocks each task uses, or where tasks split.

* :class:`AdaShare`: fine-grained sharing; per task, a keep/skip decision for every
  residual block of a shared network, learned through a Gumbel-softmax relaxation.
* :class:`LearnedBranching`: branched sharing; per task, a learned distribution
  over the depth at which it leaves the shared trunk for a branch of its own.

Both keep their decisions in ``task_parameters`` (only that task's loss reaches
them) and add a task-independent penalty through ``regularizer()``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..tasks import Task, TaskSet
from .base import MTLOutput, MultiTaskModel, block_outputs, bottleneck, params_of
from .sharing import linear_head, mlp_body


class AdaShare(MultiTaskModel):
    """AdaShare: which shared residual blocks each task executes, learned by Gumbel-softmax.

    A shared stem, then L shared residual blocks F_l. Task t keeps logits π_t ∈ R^{L×2}
    (keep, skip) and runs

        h_t^l = h_t^{l-1} + u_{t,l} · F_l(h_t^{l-1}),   u_{t,l} = GumbelSoftmax_τ(π_{t,l})_keep  (training)
        u_{t,l} = 1[π_{t,l,keep} ≥ π_{t,l,skip}]                                           (evaluation)

    with a penalty that favours skipping and favours sharing the lower blocks
    (α_{t,l} = softmax(π_{t,l})_keep):

        Ω = λ_sparsity Σ_{t,l} log α_{t,l} + λ_sharing Σ_{t<s} Σ_l (L − l)/L · |α_{t,l} − α_{s,l}|,   l = 0..L−1

    Simplification: the paper's curriculum (unfreezing the policy of the top blocks
    first) and its hard sampling stage are left out; training uses the soft
    relaxation throughout, so every block stays reachable by every task.

    X. Sun, R. Panda, R. Feris, K. Saenko, "AdaShare: Learning What To Share For
    Efficient Deep Multi-Task Learning", NeurIPS 2020, arXiv 1911.12423.
    """

    def __init__(self, tasks: TaskSet, stem: nn.Module, blocks: Sequence[nn.Module], head: Callable[[Task], nn.Module],
                 in_shape: tuple[int, ...], sparsity: float = 0.01, sharing: float = 0.05, tau: float = 1.0):
        super().__init__(tasks)
        if tau <= 0:
            raise ValueError(f"Gumbel-softmax temperature tau must be positive, got {tau}")
        self.in_shape, self.sparsity, self.sharing, self.tau = tuple(in_shape), sparsity, sharing, tau
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.logits = nn.ParameterDict({n: nn.Parameter(torch.zeros(len(blocks), 2)) for n in tasks})
        self.heads = nn.ModuleDict({n: head(tasks[n]) for n in tasks})

    @classmethod
    def mlp(cls, tasks: TaskSet, in_dim: int, width: int = 64, depth: int = 4, **kwargs) -> "AdaShare":
        blocks = [nn.Sequential(nn.Linear(width, width), nn.ReLU()) for _ in range(depth)]
        return cls(tasks, mlp_body(in_dim, [width])()[0], blocks, linear_head(width), (in_dim,), **kwargs)

    @classmethod
    def cnn(cls, tasks: TaskSet, in_channels: int = 1, image_size: int = 36, channels: int = 16, depth: int = 4,
            **kwargs) -> "AdaShare":
        """A conv stem (halves the resolution), then residual 3×3 conv blocks at that resolution."""
        stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        blocks = [nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()) for _ in range(depth)]

        def head(task: Task) -> nn.Module:
            return nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(channels * 16, task.out_dim))
        return cls(tasks, stem, blocks, head, (in_channels, image_size, image_size), **kwargs)

    def _stacked_logits(self) -> Tensor:
        return torch.stack([self.logits[n] for n in self.tasks])  # (T, L, 2)

    def keep_probabilities(self) -> Tensor:
        """α (T, L): each task's probability of executing each block (with gradients)."""
        return torch.softmax(self._stacked_logits(), -1)[..., 0]

    def policy(self) -> Tensor:
        """α (T, L), detached: rows are tasks, columns blocks; what :meth:`forward` uses at evaluation is α ≥ ½."""
        return self.keep_probabilities().detach()

    def sharing_summary(self) -> dict[str, float]:
        """Each task's probability of executing each block."""
        return {f"keep[{t}, block {k + 1}]": float(p) for t, row in zip(self.tasks, self.policy()) for k, p in enumerate(row)}

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x, self.in_shape)
        logits = self._stacked_logits()
        if self.training:
            u = F.gumbel_softmax(logits, tau=self.tau, hard=False)[..., 0]
        else:
            u = (logits[..., 0] >= logits[..., 1]).to(logits.dtype)
        h0 = self.stem(x)
        T = len(self.tasks)
        h = h0.unsqueeze(0).expand(T, *h0.shape)
        for l, block in enumerate(self.blocks):
            out = block(h.flatten(0, 1)).view_as(h)
            h = h + u[:, l].view(T, *([1] * (h.dim() - 1))) * out
        return MTLOutput({n: self.heads[n](h[t]) for t, n in enumerate(self.tasks)}, None)

    def regularizer(self) -> Tensor:
        alpha = self.keep_probabilities()
        L = alpha.shape[1]
        depth_weight = (L - torch.arange(L, device=alpha.device, dtype=alpha.dtype)) / L
        gaps = (alpha.unsqueeze(0) - alpha.unsqueeze(1)).abs().sum(dim=(0, 1)) / 2  # Σ_{t<s} |α_t − α_s| per block
        return self.sparsity * alpha.log().sum() + self.sharing * (depth_weight * gaps).sum()

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.tasks[name]
        return [self.logits[name], *params_of(self.heads[name])]


class LearnedBranching(MultiTaskModel):
    """Learned branching: each task learns a soft split depth between a shared trunk and its own branch.

    A shared trunk s^l = block_l(s^{l-1}) (s^0 = x) and, per task, a branch of the
    same blocks. Task t keeps logits over its split depth k ∈ {0, ..., L} (k = L:
    shares everything; k = 0: its own network), p_t = softmax(logits_t), and with
    c_t^l = P(k ≥ l) = Σ_{k ≥ l} p_t(k), the probability that layer l is still shared,

        h_t^l = c_t^l · s^l + (1 − c_t^l) · branch_t^l(h_t^{l-1}),    h_t^0 = x,    ŷ_t = head_t(h_t^L)

    a mean-field relaxation of "task t branches off after layer k". The penalty
    ``cost · Σ_t (L − E[k_t]) / L`` charges each task for the layers it owns, so
    tasks branch only where sharing costs them more loss than that.

    Simplification: Guo et al. learn a tree (each node picks a parent by
    Gumbel-softmax) and Bruggemann et al. search branchings under a resource
    budget; here the tree is restricted to one split point per task.

    P. Guo, C.-Y. Lee, D. Ulbricht, "Learning to Branch for Multi-Task Learning",
    ICML 2020, arXiv 2006.01895. D. Bruggemann, M. Kanakis, S. Georgoulis, L. Van Gool,
    "Automated Search for Resource-Efficient Branched Multi-Task Networks", BMVC 2020,
    arXiv 2008.10292.
    """

    def __init__(self, tasks: TaskSet, in_dim: int, widths: Sequence[int] = (64, 64, 32), cost: float = 0.01):
        super().__init__(tasks)
        if cost < 0:
            raise ValueError(f"branching cost must be >= 0, got {cost}")
        self.in_shape, self.cost = (in_dim,), cost
        body = mlp_body(in_dim, widths)
        self.trunk = nn.ModuleList(body())
        self.branches = nn.ModuleDict({n: nn.ModuleList(body()) for n in tasks})
        self.split_logits = nn.ParameterDict({n: nn.Parameter(torch.zeros(len(widths) + 1)) for n in tasks})
        self.heads = nn.ModuleDict({n: nn.Linear(widths[-1], tasks[n].out_dim) for n in tasks})

    @classmethod
    def mlp(cls, tasks: TaskSet, in_dim: int, widths: Sequence[int] = (64, 64, 32), cost: float = 0.01
            ) -> "LearnedBranching":
        return cls(tasks, in_dim, widths, cost)

    def split_probabilities(self) -> Tensor:
        """p (T, L+1) with gradients: row t is task t's distribution over split depths 0..L."""
        return torch.softmax(torch.stack([self.split_logits[n] for n in self.tasks]), -1)

    def expected_split(self) -> Tensor:
        """E[k_t] (T,) with gradients: how many layers each task shares, in expectation."""
        p = self.split_probabilities()
        return p @ torch.arange(p.shape[1], dtype=p.dtype, device=p.device)

    def sharing_summary(self) -> dict[str, float]:
        """Each task's expected split depth (how many layers it shares)."""
        return {f"E[split depth] {t}": float(k) for t, k in zip(self.tasks, self.expected_split().detach())}

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x, self.in_shape)
        z, trunk = bottleneck(block_outputs(self.trunk, x))
        p = self.split_probabilities()
        still_shared = p.flip(1).cumsum(1).flip(1)[:, 1:]  # (T, L): c_t^l = P(k ≥ l), l = 1..L
        outputs = {}
        for t, n in enumerate(self.tasks):
            h = x
            for l, (shared, block) in enumerate(zip(trunk, self.branches[n])):
                h = still_shared[t, l] * shared + (1 - still_shared[t, l]) * block(h)
            outputs[n] = self.heads[n](h)
        return MTLOutput(outputs, z)

    def regularizer(self) -> Tensor:
        L = len(self.trunk)
        return self.cost * ((L - self.expected_split()) / L).sum()

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.tasks[name]
        return [self.split_logits[name], *params_of(self.branches[name], self.heads[name])]
