"""Pareto fronts and toy trajectories: hand-made fronts, the toy's exact Pareto set, and where optimisers end."""
import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from mtlkit import BALANCERS, HardSharing, make_balancer
from mtlkit.balancers import FAMO, gradient_methods
from mtlkit.data import correlated_regression, toy_grid, toy_losses
from mtlkit.data.toy2d import (CAGRAD_STARTS, PARETO_X2, SHIFT, STARTS, pareto_set_distance, toy_jacobian,
                               toy_pareto_set)
from mtlkit.pareto import (FrontPoint, ToyModel, method_points, non_dominated, objective_matrix, pareto_front,
                           pareto_stationarity, scalarization_sweep, simplex_weights, toy_trajectories,
                           toy_trajectory, update_direction)


# -- fronts --------------------------------------------------------------------------
def test_non_dominated_on_hand_made_sets():
    P = [[1, 2], [2, 1], [2, 2], [3, 3], [1, 2], [0.5, 5]]
    assert non_dominated(P).tolist() == [True, True, False, False, True, True]
    assert non_dominated([[1, 1, 1], [1, 1, 2], [0, 2, 2], [2, 0, 0]]).tolist() == [True, False, True, True]
    assert non_dominated([[3.0, 4.0]]).tolist() == [True]
    chain = np.array([[i, i] for i in range(5)], dtype=float)[::-1]
    assert non_dominated(chain).tolist() == [False, False, False, False, True]


def test_non_dominated_matches_brute_force_on_random_sets():
    rng = np.random.default_rng(0)
    for _ in range(20):
        P = rng.integers(0, 5, size=(12, 3)).astype(float)
        brute = [not any((q <= p).all() and (q < p).any() for q in P) for p in P]
        assert non_dominated(P).tolist() == brute


def test_pareto_front_is_sorted_by_the_first_objective():
    P = [[3, 1], [1, 3], [2, 2], [3, 3]]
    assert pareto_front(P).tolist() == [1, 2, 0]


def test_bad_point_sets_are_named():
    with pytest.raises(ValueError, match=r"matrix \(N, M\)"):
        non_dominated([1, 2, 3])
    with pytest.raises(ValueError, match="NaN or inf"):
        non_dominated([[1, np.nan]])


def test_simplex_weights():
    w = simplex_weights(5)
    assert w[0] == (0.0, 1.0) and w[-1] == (1.0, 0.0) and all(sum(v) == pytest.approx(1.0) for v in w)
    with pytest.raises(ValueError):
        simplex_weights(1)


# -- the toy's Pareto set ---------------------------------------------------------------
def test_toy_jacobian_matches_autograd():
    rng = np.random.default_rng(1)
    for scale, shift in ((1.0, 0.0), (0.1, 0.0), (0.1, SHIFT)):
        for theta in rng.uniform(-10, 10, size=(20, 2)):
            t = torch.tensor(theta, requires_grad=True)
            f = toy_losses(t, shift) * torch.tensor([scale, 1.0], dtype=t.dtype)
            J = torch.stack([torch.autograd.grad(f[i], t, retain_graph=True)[0] for i in range(2)])
            f2, J2 = toy_jacobian(theta, scale, shift)
            np.testing.assert_allclose(f2, f.detach().numpy(), atol=1e-12)
            np.testing.assert_allclose(J2, J.numpy(), atol=1e-9)


def test_the_shift_makes_both_losses_positive_and_changes_no_gradient():
    """f_i > -20 everywhere (the bowls' floor, reached only as x₂ → -∞), so SHIFT = 21 leaves every loss positive."""
    _, _, F = toy_grid(-30, 30, 301)
    assert F.min() > -20 and (F + SHIFT).min() > 0.5
    floor = torch.tensor([[7.0, -8.434], [-7.0, -8.434], [7.0, -40.0]], dtype=torch.float64)  # bowls: minima, far down
    assert (toy_losses(floor, SHIFT) > 0).all()
    for theta in np.random.default_rng(2).uniform(-10, 10, size=(10, 2)):
        f0, J0 = toy_jacobian(theta)
        f1, J1 = toy_jacobian(theta, shift=SHIFT)
        np.testing.assert_array_equal(J0, J1)
        np.testing.assert_allclose(f1 - f0, SHIFT)


def test_toy_pareto_set_is_pareto_stationary_and_ends_at_the_single_task_minima():
    thetas, front = toy_pareto_set(41)
    for theta in thetas:
        _, J = toy_jacobian(theta)
        cos = J[0] @ J[1] / (np.linalg.norm(J[0]) * np.linalg.norm(J[1]) + 1e-300)
        assert pareto_stationarity(theta) < 1e-6
        assert cos == pytest.approx(-1.0, abs=1e-6) or np.linalg.norm(J[0]) * np.linalg.norm(J[1]) < 1e-9
    assert thetas[20] == pytest.approx([0.0, PARETO_X2], abs=1e-3)  # the papers' x₂ in the middle
    for end, task in ((thetas[-1], 0), (thetas[0], 1)):  # x₁ = 7 minimises f₁, x₁ = -7 minimises f₂
        best = minimize(lambda th: toy_jacobian(th)[0][task], end + 0.3, method="Nelder-Mead",
                        options={"xatol": 1e-8, "fatol": 1e-12})
        assert best.x == pytest.approx(end, abs=1e-3)
    assert (np.diff(front[:, 0]) < 0).all() and (np.diff(front[:, 1]) > 0).all()  # a trade-off curve


def test_pareto_set_distance_and_stationarity_off_the_set():
    thetas, _ = toy_pareto_set(9)
    assert pareto_set_distance(thetas) == pytest.approx(np.zeros(9), abs=1e-9)
    assert pareto_set_distance(np.array([[0.0, 0.0]]))[0] == pytest.approx(8.3551, abs=1e-3)
    assert pareto_set_distance(np.array([[10.0, -8.43445986]]))[0] == pytest.approx(3.0, abs=1e-3)
    assert pareto_stationarity([0.0, -6.0]) > 0.05


# -- trajectories ----------------------------------------------------------------------------
def test_mgda_ends_pareto_stationary_at_the_first_pareto_point_it_meets():
    tr = toy_trajectory("mgda", CAGRAD_STARTS[1], steps=4000, lr=0.01, every=50, stall=(200, 0.02))
    assert tr.steps < 4000, "the run should stall once it is Pareto-stationary"
    assert pareto_stationarity(tr.end) < 1e-3 and tr.distance_to_pareto_set() < 0.02
    assert tr.end[0] == pytest.approx(-7.0, abs=0.05)  # task 2's own minimum, the end of the set


def test_equal_weighting_from_the_lower_start_reaches_the_average_loss_minimum():
    tr = toy_trajectory("equal", CAGRAD_STARTS[1], steps=4000, lr=0.01, every=50, stall=(200, 0.02))
    assert tr.end == pytest.approx([0.0, -8.3551], abs=0.02)
    assert tr.losses[-1, 0] == pytest.approx(tr.losses[-1, 1], abs=0.05)  # the two tasks tie


def test_equal_weighting_from_the_top_left_start_is_stuck_in_task_1s_valley():
    """The CAGrad paper's figure: with Adam at lr 1e-3, gradient descent on the average stalls up in the valley."""
    tr = toy_trajectory("equal", CAGRAD_STARTS[0], steps=3000, lr=1e-3, every=100)
    x1, x2 = tr.end
    assert x2 > 2.0 and tr.distance_to_pareto_set() > 10
    assert abs(0.5 * (-x1 - 7) - np.tanh(-x2)) < 0.05  # the argument of f₁'s log is ~0: its valley floor


def test_equal_weighting_with_a_scaled_task_ends_at_the_weighted_sum_minimiser():
    """With f₁ scaled by 0.1 (the Nash-MTL paper's setting), EW minimises 0.1 f₁ + f₂: x₁ = -6.3 / 1.1."""
    tr = toy_trajectory("equal", CAGRAD_STARTS[1], steps=6000, lr=0.01, scale=0.1, every=100, stall=(200, 0.02))
    assert tr.end[0] == pytest.approx(-6.3 / 1.1, abs=0.01)
    best = minimize(lambda th: toy_jacobian(th, 0.1)[0].sum(), tr.end, jac=lambda th: toy_jacobian(th, 0.1)[1].sum(0))
    assert tr.end == pytest.approx(best.x, abs=0.02)


def test_trajectory_records_every_k_steps_and_is_deterministic():
    a = toy_trajectory("pcgrad", (9.0, 9.0), steps=95, lr=0.01, every=10)
    b = toy_trajectory("pcgrad", (9.0, 9.0), steps=95, lr=0.01, every=10)
    assert a.thetas.shape == (11, 2) and a.weights.shape == (10, 2) and a.steps == 95
    np.testing.assert_array_equal(a.thetas, b.thetas)
    np.testing.assert_allclose(a.losses, toy_losses(torch.from_numpy(a.thetas), SHIFT).numpy())  # shifted by default


def test_toy_trajectories_pass_method_arguments():
    runs = toy_trajectories(["cagrad", "equal"], starts=[(9.0, 9.0)], method_kwargs={"cagrad": {"c": 0.0}},
                            steps=50, lr=0.01)
    np.testing.assert_allclose(runs["cagrad"][0].thetas, runs["equal"][0].thetas, atol=1e-4)  # c = 0: EW (halved)


def test_without_the_shift_methods_that_need_positive_losses_fail_with_a_clear_error():
    with pytest.raises(ValueError, match="famo gave a non-finite update.*shift >= 21 \\(got shift=0.0\\)"):
        toy_trajectory("famo", (0.0, -3.0), steps=20, shift=0.0)
    with pytest.raises(ValueError, match="stall"):
        toy_trajectory("equal", stall=(0, 1.0))


@pytest.mark.parametrize("method", sorted(BALANCERS))
def test_every_registered_balancer_runs_on_the_shifted_toy(method):
    kwargs = {"weights": (0.3, 0.7)} if method == "fixed" else {}
    for start in (CAGRAD_STARTS[0], CAGRAD_STARTS[1]):
        tr = toy_trajectory(method, start, steps=30, lr=5e-3, every=10, **kwargs)
        assert tr.steps == 30 and np.isfinite(tr.thetas).all() and (tr.losses > 0).all()
        assert not np.allclose(tr.end, start), f"{method} did not move from {start}"


@pytest.mark.parametrize("method", ["equal", *gradient_methods()])
def test_the_shift_leaves_the_paths_of_gradient_methods_unchanged(method):
    """A constant added to both losses changes no gradient: the same θ at every step, bit for bit."""
    for start in (CAGRAD_STARTS[0], STARTS[3]):
        plain = toy_trajectory(method, start, steps=120, lr=5e-3, every=10, shift=0.0)
        shifted = toy_trajectory(method, start, steps=120, lr=5e-3, every=10)
        np.testing.assert_array_equal(shifted.thetas, plain.thetas)
        np.testing.assert_allclose(shifted.losses - plain.losses, SHIFT, rtol=0, atol=1e-9)


def test_mgdas_loss_normalisation_sees_the_shift():
    """The exception: MGDA's "loss" normalisation divides g_i by L_i, so the size of the shift changes its path."""
    a = toy_trajectory("mgda", STARTS[3], steps=100, lr=5e-3, every=10, normalization="loss")
    b = toy_trajectory("mgda", STARTS[3], steps=100, lr=5e-3, every=10, shift=2 * SHIFT, normalization="loss")
    assert not np.allclose(a.thetas, b.thetas)


# -- update directions without a model -------------------------------------------------------
def angle(a, b):
    """Degrees between a and b, accurate for (nearly) parallel vectors too (Kahan's formula)."""
    u, v = a / np.linalg.norm(a), b / np.linalg.norm(b)
    return np.degrees(2 * np.arctan2(np.linalg.norm(u - v), np.linalg.norm(u + v)))


def test_update_direction_matches_the_methods():
    G = np.array([[1.0, 0.0, 2.0], [-0.5, 1.0, 0.0]])
    losses = np.array([2.0, 3.0])
    np.testing.assert_allclose(update_direction("equal", losses, G), G.sum(0))
    np.testing.assert_allclose(update_direction("fixed", losses, G, weights=(0.25, 2.0)), 0.25 * G[0] + 2 * G[1])
    d = update_direction("mgda", losses, torch.tensor(G))
    assert G @ d == pytest.approx([d @ d, d @ d])  # both tasks active: the same first-order decrease
    famo = FAMO()
    famo.setup(2)
    update_direction(famo, losses, G)
    assert famo.prev_losses is None, "the balancer given is copied, its state untouched"
    with pytest.raises(ValueError, match="gradnorm computes its update through a model"):
        update_direction("gradnorm", losses, G)
    with pytest.raises(ValueError, match=r"losses \(T,\) and G \(T, P\)"):
        update_direction("equal", losses, G[:1])


@pytest.mark.parametrize("name", sorted(BALANCERS))
def test_needs_model_is_declared_honestly(name):
    """A balancer that says it needs no model gives, from the losses and G alone, the update its backward gives."""
    theta = np.array([-2.0, -3.0])
    f, J = toy_jacobian(theta, shift=SHIFT)
    model = ToyModel(theta, shift=SHIFT).double()
    kwargs = {"weights": (0.25, 2.0)} if name == "fixed" else {}
    method = make_balancer(name, **kwargs).double()
    method.setup(2, list(model.tasks))
    torch.manual_seed(0)
    losses, output = model.losses()
    method.backward(losses, model, output)
    through_model = model.theta.grad.numpy()
    if method.needs_model:
        with pytest.raises(ValueError, match="through a model"):
            update_direction(name, f, J, **kwargs)
        return
    torch.manual_seed(0)
    np.testing.assert_allclose(update_direction(name, f, J, **kwargs), through_model, rtol=1e-9, atol=1e-12)


def rescaled(method, f, J, s, **kwargs):
    """The update directions before and after task 1's loss (and so its gradient) is multiplied by s."""
    S = np.diag([s] + [1.0] * (len(f) - 1))
    return update_direction(method, f, J, **kwargs), update_direction(method, S @ f, S @ J, **kwargs)


def test_of_the_compared_methods_only_nash_mtls_direction_ignores_a_tasks_loss_scale():
    rng = np.random.default_rng(0)
    turns = {m: [] for m in ("equal", "mgda", "pcgrad", "cagrad")}
    for T in (2, 3, 4):
        for _ in range(6):
            J, f = rng.normal(size=(T, 6)), rng.uniform(1, 3, size=T)
            for s in (10.0, 0.1):
                assert angle(*rescaled("nash_mtl", f, J, s, max_norm=None)) < 1e-6
                assert angle(*rescaled("nash_mtl", f, J, s)) < 1e-6  # clipping to max_norm keeps the direction
                for m in turns:
                    turns[m].append(angle(*rescaled(m, f, J, s)))
    assert min(turns["equal"]) > 0.01
    assert all(max(a) > 5 for a in turns.values())


def test_mgdas_direction_leans_towards_the_smaller_gradient():
    """Two tasks, α in the interior: g_i·d = ||d||², so cos(d, g_i) = ||d|| / ||g_i||, larger for the smaller g_i."""
    rng = np.random.default_rng(1)
    interior = 0
    for _ in range(200):
        J, f = rng.normal(size=(2, 5)) * rng.uniform(0.1, 10, size=(2, 1)), np.ones(2)
        small = int(np.argmin(np.linalg.norm(J, axis=1)))
        d = update_direction("mgda", f, J)
        if np.allclose(J @ d, d @ d, rtol=1e-9):  # both active (else d is the smaller gradient itself)
            interior += 1
            assert angle(d, J[small]) < angle(d, J[1 - small])
        else:
            np.testing.assert_allclose(d, J[small], rtol=1e-9, atol=1e-12)
        for s in (10.0, 0.1):  # rescaling task 1 turns d towards whichever gradient it made relatively smaller
            d0, d1 = rescaled("mgda", f, J, s)
            towards = 1 if s > 1 else 0
            assert angle(d1, J[towards]) <= angle(d0, J[towards]) + 1e-9
    assert interior > 50


# -- sweeps on a real model ------------------------------------------------------------------
@pytest.fixture(scope="module")
def regression():
    data = correlated_regression(500, rho=0.0, dim=8, seed=0)
    return data.split(300, 200, seed=0)


def make_mlp(tasks):
    return HardSharing.mlp(tasks, 8, widths=(16,))


def test_scalarization_extremes_trade_the_tasks_off(regression):
    train, test = regression
    points = scalarization_sweep(make_mlp, train, test, [(1.0, 0.0), (0.5, 0.5), (0.0, 1.0)], steps=150,
                                 lr=1e-2, batch_size=32, device="cpu")
    only_t1, _, only_t2 = points
    assert only_t1.objectives["t1"] < only_t2.objectives["t1"] and only_t2.objectives["t2"] < only_t1.objectives["t2"]
    assert [p.label for p in points] == ["w = (1.00, 0.00)", "w = (0.50, 0.50)", "w = (0.00, 1.00)"]
    M = objective_matrix(points, ["t1", "t2"])
    assert M.shape == (3, 2) and non_dominated(M)[[0, 2]].all()
    with pytest.raises(ValueError, match="has 3 entries for 2 tasks"):
        scalarization_sweep(make_mlp, train, test, [(1.0, 0.0, 0.0)], steps=1)


def test_method_points_are_seeded(regression):
    train, test = regression
    a = method_points(make_mlp, train, test, ["mgda"], steps=30, seeds=(0, 1), lr=1e-2, device="cpu")
    b = method_points(make_mlp, train, test, ["mgda"], steps=30, seeds=(0,), lr=1e-2, device="cpu")
    assert [p.label for p in a] == ["mgda (seed 0)", "mgda (seed 1)"]
    assert a[0].objectives == b[0].objectives and a[0].objectives != a[1].objectives
    assert isinstance(a[0], FrontPoint) and a[0].weights is None
    with pytest.raises(KeyError, match="metric 'accuracy'"):
        method_points(make_mlp, train, test, ["equal"], steps=1, metric="accuracy", device="cpu")
