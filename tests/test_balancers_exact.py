"""The gradient methods against exact solutions of their papers' own problems.

References (tests/exact_references.py) are written from the definitions and share
no code with mtlkit's solvers: support enumeration for MGDA's min-norm point,
active-set enumeration for UPGrad's dual-cone projections and CAGrad's primal, a
root-finder for Nash-MTL's bargaining condition, the papers' closed forms for
IMTL-G (via D Uᵀ) and Aligned-MTL (via the SVD of G).

Families: generic, a zero row, a 1e-9 row, a duplicated row, an opposite pair, a
rank-2 G, T > P, T = 1 and T = 16; each with equal task scales and with scales
10^U(-4, 4) per task; in float32 and float64.

Tolerances, with gmax = max_i ||g_i|| (all stated relative to G's own size):
directions ||d − d_ref|| ≤ TOL·gmax; inner products (g_i·d against ||d||² or
against an optimum) within TOL·gmax²; TOL = 1e-7 in float64 (the √eps limit of any
method that works from K = G Gᵀ, where 0 is in the hull) and 1e-4 in float32
(d = wᵀG is formed in G's precision; the solve itself runs in float64).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import exact_references as ref
from mtlkit.balancers import BALANCERS, GradientBalancer, make_balancer
from mtlkit.grads import NonFiniteError

FAMILIES = {  # name: (T, P)
    "generic": (4, 7), "zero_row": (4, 7), "tiny_row": (4, 7), "duplicated": (4, 7), "opposite": (4, 7),
    "rank_deficient": (4, 7), "more_tasks_than_params": (6, 3), "one_task": (1, 5), "sixteen_tasks": (16, 4),
}
SCALES = ("equal", "spread")
DTYPES = (torch.float64, torch.float32)
TOL = {torch.float64: 1e-7, torch.float32: 1e-4}
SEEDS = (0, 1)


def family(name: str, seed: int, scales: str, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """G (T, P) of one family; degeneracies are applied after the per-task scales, so they are exact."""
    T, P = FAMILIES[name]
    rng = np.random.default_rng(seed)
    G = rng.normal(size=(2, P)) if name == "rank_deficient" else None
    G = rng.normal(size=(T, 2)) @ G if G is not None else rng.normal(size=(T, P))
    if scales == "spread":
        G *= 10.0 ** rng.uniform(-4, 4, size=(T, 1))
    if name == "zero_row":
        G[0] = 0.0
    elif name == "tiny_row":
        G[0] *= 1e-9
    elif name == "duplicated":
        G[1] = G[0]
    elif name == "opposite":
        G[1] = -G[0]
    return torch.tensor(G).to(dtype)


@functools.lru_cache(maxsize=None)
def case(name: str, seed: int, scales: str, dtype: torch.dtype) -> tuple[torch.Tensor, np.ndarray, float]:
    """G in ``dtype``, the same numbers in float64 NumPy for the references, and gmax."""
    G = family(name, seed, scales, dtype)
    G64 = G.double().numpy()
    return G, G64, float(np.linalg.norm(G64, axis=1).max())


@functools.lru_cache(maxsize=None)
def reference(method: str, name: str, seed: int, scales: str, dtype: torch.dtype):
    _, G64, _ = case(name, seed, scales, dtype)
    if method == "mgda":
        return ref.min_norm_point(G64)
    if method == "upgrad":
        return ref.upgrad(G64)
    if method == "imtl_g":
        return ref.imtl_g(G64)
    if method == "aligned_mtl":
        return ref.aligned_mtl(G64, float(torch.finfo(dtype).eps))
    if method == "nash_mtl":
        return ref.nash_weights(G64)
    raise KeyError(method)


# T = 16 on one seed: its references enumerate thousands of active sets
ALL_CASES = [(f, s, sc, dt) for f in FAMILIES for s in SEEDS for sc in SCALES for dt in DTYPES
             if f != "sixteen_tasks" or s == 0]


def ids(c) -> str:
    return f"{c[0]}-seed{c[1]}-{c[2]}-{str(c[3]).removeprefix('torch.')}"


@pytest.mark.parametrize("method", ["mgda", "upgrad", "imtl_g", "aligned_mtl"])
@pytest.mark.parametrize("c", ALL_CASES, ids=ids)
def test_direction_matches_the_exact_solution(method, c):
    if method == "upgrad" and c[0] == "sixteen_tasks" and c[3] == torch.float32:
        pytest.skip("UPGrad's T = 16 reference (40,000 face projections) runs in float64 only")
    G, _, gmax = case(*c)
    d = make_balancer(method).aggregate(G)
    assert d.dtype == G.dtype and torch.isfinite(d).all()
    expected = reference(method, *c)
    err = float(np.linalg.norm(d.double().numpy() - expected))
    assert err <= TOL[G.dtype] * max(gmax, float(np.linalg.norm(expected))), \
        f"{method} on {ids(c)}: ||d − d_ref|| = {err:.3g}, gmax = {gmax:.3g}"


@pytest.mark.parametrize("c", ALL_CASES, ids=ids)
def test_nash_mtl_matches_the_root_of_the_bargaining_condition(c):
    G, G64, gmax = case(*c)
    b = make_balancer("nash_mtl", max_norm=None)
    d = b.aggregate(G)
    expected = reference("nash_mtl", *c)
    if expected is None:  # no bargaining solution: 0 is in the hull of the unit gradients
        U = G64[np.linalg.norm(G64, axis=1) > 0]
        U = U / np.linalg.norm(U, axis=1, keepdims=True)
        assert np.linalg.norm(ref.min_norm_point(U)) < 1e-6
        assert float(d.norm()) == 0.0
        return
    norms = np.linalg.norm(G64, axis=1)
    beta, beta_ref = b.last_weights.double().numpy() * norms, expected * norms  # α_i ||g_i||: scale-free
    assert np.abs(beta - beta_ref).max() <= 1e-6 * beta_ref.max() + TOL[G.dtype], f"{ids(c)}: {beta} vs {beta_ref}"


@pytest.mark.parametrize("c", [c for c in ALL_CASES if c[0] != "sixteen_tasks" or c[2:] == ("equal", torch.float64)],
                         ids=ids)
def test_cagrad_reaches_the_optimum_of_its_problem(c):
    G, G64, gmax = case(*c)
    cval = 0.5
    d = make_balancer("cagrad", c=cval, rescale=False).aggregate(G).double().numpy()
    g0 = G64.mean(axis=0)
    tol = TOL[G.dtype]
    assert np.linalg.norm(d - g0) <= cval * np.linalg.norm(g0) + tol * gmax, "outside CAGrad's ball"
    optimum = ref.cagrad_optimum(G64, cval, iters=36 if G.shape[0] > 8 else 60)
    worst = float((G64 @ d).min())
    assert worst >= optimum - tol * gmax ** 2, f"{ids(c)}: worst task {worst:.6g} below the optimum {optimum:.6g}"


def test_cagrad_with_opposite_gradients_beside_a_third_keeps_the_worst_task_at_the_optimum():
    g = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    h = torch.tensor([0.3, 1.0, 0.0], dtype=torch.float64)   # cos(g, h) ≈ 0.29 < c: the optimum is 0
    G = torch.stack([g, -g, h])
    d = make_balancer("cagrad", c=0.5, rescale=False).aggregate(G)
    assert float((G @ d).min()) >= -1e-12        # the mean g0 = h/3 would give task 2 −0.1
    assert float((G @ G.mean(0)).min()) < -0.09


# -- the papers' guarantees, as properties over the same families ----------------------------------
cases = st.tuples(st.sampled_from(list(FAMILIES)), st.integers(0, 2 ** 16), st.sampled_from(SCALES),
                  st.sampled_from(DTYPES))
PROPERTIES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def nonzero_units(G64: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(G64, axis=1)
    return G64[n > 0] / n[n > 0, None]


@PROPERTIES
@given(c=cases)
def test_mgda_every_task_decreases_at_least_as_fast_as_the_update_is_long(c):
    G, G64, gmax = case(*c)
    b = make_balancer("mgda")
    d = b.aggregate(G).double().numpy()
    alpha = b.last_weights.double().numpy()
    tol = TOL[G.dtype] * gmax ** 2
    assert alpha.min() >= 0 and math.isclose(alpha.sum(), 1.0, rel_tol=1e-6)
    decrease = G64 @ d
    assert decrease.min() >= d @ d - tol                          # g_i·d ≥ ||d||² for every task
    assert np.abs(decrease[alpha > 1e-6] - d @ d).max() <= tol    # with equality where α_i > 0


@PROPERTIES
@given(c=cases)
def test_upgrad_conflicts_with_no_task(c):
    G, G64, gmax = case(*c)
    d = make_balancer("upgrad").aggregate(G).double().numpy()
    assert (nonzero_units(G64) @ d).min() >= -TOL[G.dtype] * gmax  # u_i·d ≥ 0: even a 1e-9 gradient's direction


@PROPERTIES
@given(c=cases)
def test_imtl_g_projects_equally_on_every_non_zero_unit_gradient(c):
    G, G64, gmax = case(*c)
    b = make_balancer("imtl_g")
    d = b.aggregate(G).double().numpy()
    proj = nonzero_units(G64) @ d
    assert np.abs(proj - proj.mean()).max() <= TOL[G.dtype] * max(gmax, np.linalg.norm(d))
    assert math.isclose(float(b.last_weights.double().sum()), 1.0, rel_tol=1e-6, abs_tol=1e-6)


@PROPERTIES
@given(c=cases)
def test_nash_mtl_meets_the_bargaining_condition_or_stops(c):
    G, G64, _ = case(*c)
    b = make_balancer("nash_mtl", max_norm=None)
    d = b.aggregate(G).double().numpy()
    alpha = b.last_weights.double().numpy()
    nz = np.linalg.norm(G64, axis=1) > 0
    if not d.any():  # no bargain: 0 in the hull of the unit gradients
        assert np.linalg.norm(ref.min_norm_point(nonzero_units(G64))) < 1e-6
        return
    share = alpha[nz] * (G64[nz] @ d)    # α_i (K α)_i with d formed in G's dtype
    assert np.abs(share - 1).max() <= (1e-6 if G.dtype == torch.float64 else 1e-3)
    assert (alpha[~nz] == 0).all()


@PROPERTIES
@given(c=cases, s=st.sampled_from([1e-3, 10.0, 1e4]))
def test_nash_mtl_does_not_rotate_when_one_loss_is_rescaled(c, s):
    G, G64, gmax = case(*c)
    if G.dtype == torch.float32:
        return
    d = make_balancer("nash_mtl", max_norm=None).aggregate(G).numpy()
    scaled = G.clone()
    scaled[-1] *= s
    d_scaled = make_balancer("nash_mtl", max_norm=None).aggregate(scaled).numpy()
    assert np.linalg.norm(d - d_scaled) <= 1e-6 * max(np.linalg.norm(d), 1e-300)


@PROPERTIES
@given(c=cases, cval=st.sampled_from([0.2, 0.5, 0.9]))
def test_cagrad_stays_in_its_ball_and_beats_the_mean_on_the_worst_task(c, cval):
    G, G64, gmax = case(*c)
    d = make_balancer("cagrad", c=cval, rescale=False).aggregate(G).double().numpy()
    g0 = G64.mean(axis=0)
    tol = TOL[G.dtype]
    assert np.linalg.norm(d - g0) <= cval * np.linalg.norm(g0) + tol * gmax
    worst = (G64 @ d).min()
    assert worst >= (G64 @ g0).min() - tol * gmax ** 2               # g0 itself is in the ball
    upper = (G64 @ g0 + cval * np.linalg.norm(g0) * np.linalg.norm(G64, axis=1)).min()
    assert worst <= upper + tol * gmax ** 2                          # no point of the ball does better


# -- float32 at the edges of its range ------------------------------------------------------------
@pytest.mark.parametrize("method", ["mgda", "imtl_g", "upgrad", "aligned_mtl", "nash_mtl", "cagrad", "pcgrad"])
@pytest.mark.parametrize("scale", [1e20, 1e-30])
def test_float32_gradients_of_extreme_size_give_the_float64_direction(method, scale):
    G64 = family("generic", 3, "equal") * scale
    G32 = G64.float()
    kwargs = {"max_norm": None} if method == "nash_mtl" else {}
    d32 = make_balancer(method, **kwargs).aggregate(G32)
    d64 = make_balancer(method, **kwargs).aggregate(G32.double())   # the same numbers, solved in float64
    assert torch.isfinite(d32).all() and d32.double().norm() > 0   # (a float32 norm of 1e-31 entries underflows)
    a, b = d32.double() / scale, d64 / scale
    cos = float(a @ b / (a.norm() * b.norm()))
    assert cos > 1 - 1e-6, f"{method} at scale {scale:g}: cosine {cos}"


# -- non-finite input: one clear error, naming the task ---------------------------------------------
def bad_matrix(value: float) -> torch.Tensor:
    G = family("generic", 0, "equal")[:3]
    G[1, 2] = value
    return G


@pytest.mark.parametrize("name", [n for n in BALANCERS if issubclass(BALANCERS[n], GradientBalancer)])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_every_gradient_method_names_the_task_with_a_non_finite_gradient(name, value):
    with pytest.raises(ValueError, match=r"non-finite gradient .* for task 1 \(row 1\)") as err:
        make_balancer(name).aggregate(bad_matrix(value))
    assert isinstance(err.value, NonFiniteError)
    b = make_balancer(name)
    b.setup(3, ["depth", "normals", "labels"])
    with pytest.raises(NonFiniteError, match="for task normals;"):
        b.aggregate(bad_matrix(value))


@pytest.mark.parametrize("name", [n for n in BALANCERS if not issubclass(BALANCERS[n], GradientBalancer)])
def test_every_weighting_method_names_the_task_with_a_non_finite_loss(name):
    kwargs = {"weights": [1.0, 1.0, 1.0]} if name == "fixed" else {}
    b = make_balancer(name, **kwargs)
    b.setup(3, ["depth", "normals", "labels"])
    losses = torch.tensor([0.5, 1.0, float("nan")], requires_grad=True)
    with pytest.raises(ValueError, match="non-finite loss for task labels;"):
        b.objective(losses)


def test_famo_refuses_a_non_finite_loss_after_the_step_and_keeps_its_logits():
    b = make_balancer("famo")
    b.setup(2, ["a", "b"])
    b.objective(torch.tensor([1.0, 2.0]))
    before = b.logits.clone()
    with pytest.raises(NonFiniteError, match="loss after the step for task b; FAMO's logits were left unchanged"):
        b.after_step(lambda: torch.tensor([0.9, float("inf")]))
    assert torch.equal(b.logits, before)


def test_mgda_loss_normalisation_refuses_a_non_positive_loss():
    b = make_balancer("mgda", normalization="loss")
    b.setup(2, ["a", "b"])
    with pytest.raises(ValueError, match=r"must be positive; task b \(loss=-0.5\)"):
        b.aggregate(family("generic", 0, "equal")[:2], losses=torch.tensor([1.0, -0.5]))
