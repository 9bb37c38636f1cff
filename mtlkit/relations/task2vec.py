"""Task2Vec: embed a task as the diagonal Fisher information of a fixed probe network's weights.

A probe network φ (fixed; here a small MLP, frozen) maps inputs to features; for
each task a linear readout h_t is fitted on φ's features (φ stays frozen). With
p_w(y | x) the model's predictive distribution, the task embedding is the diagonal of
the Fisher information of the probe's weights w,

    F_t = E_{x ~ data_t} E_{y ~ p_w(y|x)} [ (∇_w log p_w(y | x))² ]        (element-wise square)

computed exactly from the per-example Jacobian J = ∂h_t(φ(x)) / ∂w (O × P):

    regression, p = N(f, σ² I):      F = E_x Σ_o J_o² / σ²,   σ² the readout's mean squared residual
    classification, p = softmax(f):  F = E_x [Σ_o p_o J_o² − (Σ_o p_o J_o)²]

Tasks are compared with the paper's symmetric, normalised cosine distance

    d(F_a, F_b) = d_cos(F_a / (F_a + F_b), F_b / (F_a + F_b)),   d_cos(u, v) = 1 − uᵀv / (||u|| ||v||)

which is 0 for equal embeddings. Simplification: the paper's probe is a network
pretrained on ImageNet and its Fisher is the "robust" variational estimate; here the
probe is any frozen feature network (default: a random MLP) and the Fisher is exact.

A. Achille, M. Lam, R. Tewari, A. Ravichandran, S. Maji, C. Fowlkes, S. Soatto,
P. Perona, "Task2Vec: Task Embedding for Meta-Learning", ICCV 2019, arXiv 1902.03545.
"""
from __future__ import annotations

import time
from typing import Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, vmap

from ..data.base import MultiTaskDataset
from ..models.sharing import mlp_body
from .base import Affinity, fit_readout


def random_probe(in_dim: int, widths: Sequence[int] = (32, 16), seed: int = 0) -> nn.Module:
    """A frozen MLP with random (seeded) weights, the probe network φ."""
    with torch.random.fork_rng(devices=[]):  # seeded without touching the global generator
        torch.manual_seed(seed)
        probe = nn.Sequential(*mlp_body(in_dim, widths)()).eval()
    for p in probe.parameters():
        p.requires_grad_(False)
    return probe


def task_embeddings(probe: nn.Module, data: MultiTaskDataset, max_examples: int = 1000) -> Tensor:
    """E (T, P): row t is task t's diagonal Fisher F_t over the probe's P weights (module docstring)."""
    x = data.x[:max_examples]
    device = x.device
    probe = probe.to(device)
    params = {n: p.detach() for n, p in probe.named_parameters()}
    with torch.no_grad():
        features = probe(x)
    rows = []
    for name in data.tasks:
        task, y = data.tasks[name], data.targets[name][:max_examples]
        head = fit_readout(features, y, task)
        J = _jacobian(probe, head, params, x)  # (N, O, P)
        with torch.no_grad():
            out = head(features)
            if task.kind == "regression":
                sigma2 = (out - y.reshape(out.shape)).pow(2).mean().clamp_min(1e-8)
                F = J.pow(2).sum(1).mean(0) / sigma2
            else:
                p = out.softmax(1).unsqueeze(-1)  # (N, O, 1)
                F = ((p * J.pow(2)).sum(1) - (p * J).sum(1).pow(2)).mean(0)
        rows.append(F)
    return torch.stack(rows)


def _jacobian(probe: nn.Module, head: nn.Module, params: dict[str, Tensor], x: Tensor) -> Tensor:
    def output(p: dict[str, Tensor], xi: Tensor) -> Tensor:
        return head(functional_call(probe, p, (xi.unsqueeze(0),))).squeeze(0)
    jac = vmap(jacrev(output), in_dims=(None, 0))(params, x)  # name -> (N, O, *shape)
    return torch.cat([j.flatten(2) for j in jac.values()], 2).detach()


def task2vec_distance(E: Tensor, eps: float = 1e-12) -> Tensor:
    """D (T, T): D[a, b] = d_cos(F_a / (F_a + F_b), F_b / (F_a + F_b)) for embeddings E (T, P) ≥ 0."""
    if E.dim() != 2:
        raise ValueError(f"embeddings must be a matrix (T, P), got shape {tuple(E.shape)}")
    if bool((E < 0).any()):
        raise ValueError("Fisher embeddings are non-negative; got negative entries")
    E = E.double()
    s = (E[:, None, :] + E[None, :, :]).clamp_min(eps)  # (T, T, P)
    a, b = E[:, None, :] / s, E[None, :, :] / s
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(eps)
    D = (1 - cos).clamp_min(0.0)
    D.fill_diagonal_(0.0)
    return D.float()


def task2vec_affinity(probe: nn.Module, data: MultiTaskDataset, max_examples: int = 1000) -> Affinity:
    """Affinity 1 − D from the Task2Vec distance; costs no network training (only readouts on frozen features)."""
    start = time.perf_counter()
    D = task2vec_distance(task_embeddings(probe, data, max_examples))
    return Affinity("task2vec", tuple(data.tasks.names), 1 - D, 0, time.perf_counter() - start)


__all__ = ["random_probe", "task2vec_affinity", "task2vec_distance", "task_embeddings"]
