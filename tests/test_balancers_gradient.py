"""Gradient methods as math on a plain (T, P) matrix G.

One parametrised property suite covers every registered gradient method (a new
one is picked up from the registry automatically); then each method's own
guarantee from its paper.
"""
import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtlkit.balancers import (CAGrad, GradDrop, GradVac, IMTLG, MGDA, NashMTL, PCGrad, UPGrad,
                              gradient_methods, make_balancer)
from mtlkit.balancers.aligned_mtl import aligned_matrix
from mtlkit.balancers.nash_mtl import nash_weights

GRADIENT_METHODS = gradient_methods()
FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = ("random", "zero", "duplicate", "opposite", "one_task", "sixteen_tasks", "tiny", "huge")


def make_G(kind: str, seed: int, T: int, P: int, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "one_task":
        T = 1
    if kind == "sixteen_tasks":
        T = 16
    G = torch.randn(T, P, generator=g, dtype=torch.float64)
    if kind == "zero":
        G[0] = 0
    elif kind == "duplicate" and T > 1:
        G[1] = G[0]
    elif kind == "opposite" and T > 1:
        G[1] = -G[0]
    elif kind == "tiny":
        G *= 1e-20
    elif kind == "huge":
        G *= 1e15
    return G.to(dtype)


g_matrices = st.builds(make_G, st.sampled_from(KINDS), st.integers(0, 2 ** 16), st.integers(2, 5),
                       st.sampled_from([1, 3, 17]))
generic_matrices = st.builds(lambda s, T, P: make_G("random", s, T, P, torch.float64),
                             st.integers(0, 2 ** 16), st.integers(2, 5), st.integers(6, 12))


def fresh(name: str, T: int, **kwargs):
    b = make_balancer(name, **kwargs)
    b.setup(T)
    return b


def aggregate(b, G: torch.Tensor) -> torch.Tensor:
    if isinstance(b, MGDA):
        return b.aggregate(G, losses=torch.ones(G.shape[0], dtype=G.dtype))
    return b.aggregate(G)


def test_every_gradient_method_is_registered_and_declares_its_symmetry():
    assert set(GRADIENT_METHODS) >= {"mgda", "mgda_ub", "pcgrad", "graddrop", "gradvac", "cagrad", "imtl_g",
                                     "nash_mtl", "aligned_mtl", "upgrad"}
    for name in GRADIENT_METHODS:
        b = make_balancer(name)
        assert b.name == name and isinstance(type(b).__dict__.get("permutation_equivariant",
                                                                   getattr(b, "permutation_equivariant", None)),
                                             bool), name
    assert make_balancer("mgda_ub").on == "z" and make_balancer("mgda").on == "params"


def check_output(name: str, G: torch.Tensor) -> None:
    b = fresh(name, G.shape[0])
    d = aggregate(b, G)
    assert d.shape == (G.shape[1],) and d.dtype == G.dtype
    assert torch.isfinite(d).all(), f"{name} returned a non-finite direction"
    if b.last_weights is not None:
        assert b.last_weights.shape == (G.shape[0],) and torch.isfinite(b.last_weights).all()
        expected = b.last_weights.double() @ G.double()
        scale = G.double().norm() * b.last_weights.double().abs().max() + 1e-300
        assert ((d.double() - expected).norm() / scale) < 1e-5  # d is the combination the weights say


@pytest.mark.parametrize("name", GRADIENT_METHODS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_degenerate_case_gives_a_finite_update(name, kind):
    check_output(name, make_G(kind, 0, 3, 5))


@pytest.mark.parametrize("name", GRADIENT_METHODS)
@FAST
@given(G=g_matrices)
def test_output_has_the_right_shape_and_is_finite(name, G):
    check_output(name, G)


@pytest.mark.parametrize("name", [n for n in GRADIENT_METHODS if make_balancer(n).permutation_equivariant])
@FAST
@given(G=generic_matrices, perm_seed=st.integers(0, 1000))
def test_permutation_of_tasks_leaves_the_update_unchanged(name, G, perm_seed):
    perm = torch.randperm(G.shape[0], generator=torch.Generator().manual_seed(perm_seed))
    d = aggregate(fresh(name, G.shape[0]), G)
    d_perm = aggregate(fresh(name, G.shape[0]), G[perm])
    assert torch.allclose(d, d_perm, atol=1e-6 * float(G.norm()), rtol=1e-5)


def test_randomised_methods_reproduce_with_their_seed():
    G = make_G("random", 0, 4, 9)
    for cls in (PCGrad, GradDrop, GradVac):
        assert torch.equal(cls(seed=3).aggregate(G), cls(seed=3).aggregate(G)), cls.name


# --- MGDA -------------------------------------------------------------------

def _brute_force_min_norm(G: torch.Tensor, steps: int) -> float:
    """min ||αᵀG||² over the simplex grid α ∈ {0, 1/steps, ..., 1}^T, Σα = 1."""
    T = G.shape[0]
    grid = torch.tensor([c for c in itertools.product(range(steps + 1), repeat=T - 1) if sum(c) <= steps],
                        dtype=G.dtype)
    alphas = torch.cat([grid, steps - grid.sum(1, keepdim=True)], dim=1) / steps
    return float(((alphas @ G) ** 2).sum(1).min())


@pytest.mark.parametrize("T, steps", [(2, 5000), (3, 300)])
@pytest.mark.parametrize("seed", range(4))
def test_mgda_finds_the_min_norm_point_of_the_convex_hull(T, steps, seed):
    G = make_G("random", seed, T, 4, torch.float64)
    G[0] -= 1.5 * G[1]  # make some pairs conflict
    b = MGDA()
    d = b.aggregate(G)
    brute = _brute_force_min_norm(G, steps)
    assert float(d.norm() ** 2) <= brute + 1e-9
    assert float(d.norm() ** 2) >= brute - 0.05 * brute - 1e-9  # the grid is fine enough to be close
    assert torch.isclose(b.last_weights.sum(), torch.tensor(1.0, dtype=G.dtype)) and (b.last_weights >= 0).all()
    # optimality: every g_i improves at least as much as ||d||² along d
    assert (G @ d >= d.norm() ** 2 - 1e-8).all()


def test_mgda_is_zero_at_a_pareto_stationary_point():
    g = torch.tensor([1.0, 2.0, -0.5])
    assert torch.equal(MGDA().aggregate(torch.stack([g, -g])), torch.zeros(3))
    angles = torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3], dtype=torch.float64)
    star = torch.stack([angles.cos(), angles.sin(), torch.zeros(3, dtype=torch.float64)], dim=1)
    assert MGDA().aggregate(star).norm() < 1e-6


def test_mgda_normalisations_use_norms_and_losses():
    G = torch.tensor([[10.0, 0.0], [0.0, 1.0]])
    b = MGDA(normalization="l2")
    b.aggregate(G)
    assert torch.allclose(b.last_weights, torch.tensor([0.5, 0.5]))  # unit gradients: symmetric solution
    b = MGDA(normalization="loss")
    b.aggregate(G, losses=torch.tensor([10.0, 1.0]))
    assert torch.allclose(b.last_weights, torch.tensor([0.5, 0.5]))
    b = MGDA(normalization="loss+")
    b.aggregate(G, losses=torch.tensor([2.0, 2.0]))
    assert torch.allclose(b.last_weights, torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="needs the losses"):
        MGDA(normalization="loss").aggregate(G)
    with pytest.raises(ValueError, match="normalization must be one of"):
        MGDA(normalization="l1")


# --- PCGrad, GradVac, GradDrop ------------------------------------------------

def test_pcgrad_two_tasks_removes_exactly_the_conflicting_component():
    g1 = torch.tensor([1.0, 0.0, 2.0])
    g2 = torch.tensor([-1.0, 1.0, 0.0])
    d = PCGrad().aggregate(torch.stack([g1, g2]))
    p1 = g1 - (g1 @ g2) / (g2 @ g2) * g2
    p2 = g2 - (g2 @ g1) / (g1 @ g1) * g1
    assert torch.allclose(d, p1 + p2)
    assert abs(float(p1 @ g2)) < 1e-6 and abs(float(p2 @ g1)) < 1e-6
    agree = torch.stack([g1, g1 + g2 * 0.1])
    assert torch.allclose(PCGrad().aggregate(agree), agree.sum(0))  # no conflict: plain sum


def test_pcgrad_projects_on_the_original_gradients():
    G = torch.tensor([[1.0, 0.0], [-1.0, 0.5], [-1.0, -0.5]], dtype=torch.float64)
    b = PCGrad(seed=0)
    C = b.combination((G @ G.T).numpy())
    # each projection subtracts only multiples of the other ORIGINAL rows
    for i in range(3):
        assert C[i, i] == 1.0
    d = b.aggregate(G)
    assert torch.isfinite(d).all()


def test_gradvac_first_step_reaches_the_zero_target_and_updates_the_ema():
    g1 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    g2 = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    b = GradVac(beta=0.5)
    b.setup(2)
    G = torch.stack([g1, g2])
    C = b.combination((G @ G.T).numpy())
    new = torch.as_tensor(C) @ G
    assert abs(float(new[0] @ g2)) < 1e-12 and abs(float(new[1] @ g1)) < 1e-12  # cos pulled up to the target 0
    cos = -1 / math.sqrt(2)
    assert torch.allclose(b.targets, torch.tensor([[0.0, 0.5 * cos], [0.5 * cos, 0.0]], dtype=torch.float64))
    b.targets.fill_(0.5)  # a positive target: even agreeing gradients are pulled closer
    pair = torch.stack([g1, torch.tensor([0.0, 1.0], dtype=torch.float64)])
    C = torch.as_tensor(b.combination((pair @ pair.T).numpy()))
    new = C @ pair
    assert math.isclose(float(new[0] @ pair[1] / new[0].norm()), 0.5, rel_tol=1e-9)


def test_graddrop_keeps_one_sign_per_coordinate():
    g = torch.tensor([1.0, -2.0, 3.0, 0.5])
    assert torch.allclose(GradDrop().aggregate(g[None]), g)  # one task: everything passes
    same = torch.stack([g, 2 * g])
    assert torch.allclose(GradDrop().aggregate(same), 3 * g)  # no sign conflict: plain sum
    d = GradDrop(seed=1).aggregate(torch.stack([g, -g]))
    assert torch.allclose(d.abs(), g.abs())  # exactly one of the two opposite components survives
    assert torch.allclose(GradDrop(leak=1.0).aggregate(torch.stack([g, -g])), torch.zeros(4))


# --- CAGrad, IMTL-G, Nash-MTL, Aligned-MTL, UPGrad ----------------------------

@FAST
@given(G=g_matrices)
def test_cagrad_with_c_zero_is_the_mean_gradient(G):
    assert torch.allclose(CAGrad(c=0.0).aggregate(G), G.mean(0))


@FAST
@given(G=generic_matrices, c=st.sampled_from([0.2, 0.5, 0.9]))
def test_cagrad_improves_the_worst_task_within_its_ball(G, c):
    g0 = G.mean(0)
    d = CAGrad(c=c, rescale=False).aggregate(G)
    scale = float(G.norm() ** 2)
    assert (d - g0).norm() <= c * g0.norm() * (1 + 1e-6) + 1e-9
    assert float((G @ d).min()) >= float((G @ g0).min()) - 1e-6 * scale


@FAST
@given(G=generic_matrices)
def test_imtl_g_projections_on_unit_gradients_are_equal(G):
    b = IMTLG()
    d = b.aggregate(G)
    proj = (G / G.norm(dim=1, keepdim=True)) @ d
    assert torch.allclose(proj, proj.mean().expand_as(proj), rtol=1e-6, atol=1e-9 * float(G.norm()))
    assert torch.isclose(b.last_weights.sum(), torch.tensor(1.0, dtype=G.dtype))


@FAST
@given(G=generic_matrices, scale=st.sampled_from([1e-4, 1.0, 1e4]))
def test_nash_mtl_weights_solve_the_bargaining_equation(G, scale):
    G = G * scale
    K = (G @ G.T).numpy()
    alpha = nash_weights(K)
    assert (alpha > 0).all()
    np.testing.assert_allclose(K @ alpha, 1 / alpha, rtol=1e-4)
    b = NashMTL(max_norm=None)
    d = b.aggregate(G)
    np.testing.assert_allclose(b.last_weights.numpy() * (G @ d).numpy(), 1.0, rtol=1e-4)  # equal shares


def test_nash_mtl_clips_the_update_norm():
    G = torch.tensor([[1e-3, 0.0], [0.0, 1e-3]])
    assert math.isclose(float(NashMTL(max_norm=1.0).aggregate(G).norm()), 1.0, rel_tol=1e-5)


@FAST
@given(G=generic_matrices)
def test_aligned_mtl_gives_an_orthogonal_system_with_the_smallest_singular_value(G):
    K = (G @ G.T).numpy()
    B = aligned_matrix(K, 1e-12)
    aligned = torch.as_tensor(B) @ G
    sigma_min = float(torch.linalg.svdvals(G).min())
    expected = sigma_min ** 2 * torch.eye(G.shape[0], dtype=G.dtype)
    assert torch.allclose(aligned @ aligned.T, expected, atol=1e-8 * float(G.norm() ** 2))


@pytest.mark.parametrize("name", ["upgrad"])
@FAST
@given(G=g_matrices)
def test_upgrad_never_conflicts_with_any_task(name, G):
    G = G.double()
    d = fresh(name, G.shape[0]).aggregate(G)
    scale = float(G.norm()) ** 2 + 1e-300
    assert float((G @ d).min()) >= -1e-9 * scale


def test_upgrad_leaves_non_conflicting_gradients_as_their_mean():
    G = torch.tensor([[1.0, 0.2], [0.3, 1.0]])
    assert torch.allclose(UPGrad().aggregate(G), G.mean(0))
