"""Each loss-weighting method's guarantee, checked as math on plain tensors."""
import math

import pytest
import torch

import mtlkit as M
from mtlkit.balancers import (FAMO, DynamicTaskPrioritization, DynamicWeightAverage, GeometricLoss, GradNorm,
                              RandomLossWeighting, UncertaintyWeighting)
from mtlkit.data import correlated_regression


@pytest.mark.parametrize("form, factor", [("regression", 1.0), ("classification", 2.0)])
def test_uncertainty_optimum_is_sigma_squared_equal_to_the_loss(form, factor):
    losses = torch.tensor([0.05, 1.0, 7.0])
    b = UncertaintyWeighting(form=form)
    b.setup(3)
    opt = torch.optim.Adam(b.parameters(), lr=0.05)
    for _ in range(1500):
        opt.zero_grad()
        b.objective(losses)[0].backward()
        opt.step()
    # regression form: σ² = e^s = L;  classification form: e^s = 2L
    assert torch.allclose(b.log_vars.exp(), factor * losses, rtol=1e-3)
    _, w = b.objective(losses)
    assert torch.allclose(w * losses, torch.full((3,), 0.5), rtol=1e-3)  # every task's weighted loss equals ½


def test_uncertainty_auto_form_follows_task_kinds_and_bad_forms_are_named():
    tasks = M.TaskSet([M.regression("r"), M.classification("c", 3)])
    b = UncertaintyWeighting(form="auto")
    b.setup(2)

    class Stub:
        pass
    model = Stub()
    model.tasks = tasks
    losses = torch.tensor([1.0, 1.0], requires_grad=True)
    info = b.backward(losses, model, None)
    assert info.weights.tolist() == [0.5, 1.0]
    with pytest.raises(ValueError, match="form must be one of"):
        UncertaintyWeighting(form="poisson")


def test_gradnorm_weight_gradient_pushes_towards_the_target():
    b = GradNorm(alpha=1.0)
    b.setup(2)
    L0 = torch.tensor([1.0, 1.0])
    b.weight_gradient(L0, torch.tensor([1.0, 1.0]))
    b.after_step(lambda: L0)  # the first step succeeded: L(0) is stored
    assert torch.equal(b.initial_losses, L0)
    # task 1 trains slower (higher relative loss) -> its target is higher -> its weight's gradient is negative
    grad = b.weight_gradient(torch.tensor([0.9, 0.3]), torch.tensor([2.0, 2.0]))
    assert grad[0] < 0 < grad[1]
    assert torch.allclose(grad.abs(), torch.tensor([2.0, 2.0]))


def test_gradnorm_weights_stay_positive_and_sum_to_T_through_training():
    data = correlated_regression(128, 0.3, dim=8, num_tasks=3, seed=0, scale=1.0)
    data.targets["t3"] = data.targets["t3"] * 30  # one task with a much larger loss
    M.seed_everything(0)
    model = M.HardSharing.mlp(data.tasks, 8, (16, 8))
    trainer = M.Trainer(model, "gradnorm", lr=0.05, batch_size=32, device="cpu")
    trainer.fit(data, steps=40)
    w = trainer.balancer.task_weights.detach()
    assert (w > 0).all() and torch.isclose(w.sum(), torch.tensor(3.0))
    assert not torch.allclose(w, torch.ones(3))  # the weights did move
    for row in trainer.history["weights"]:
        assert min(row) > 0 and math.isclose(sum(row), 3.0, rel_tol=1e-5)


def test_gradnorm_needs_a_shared_layer():
    data = correlated_regression(32, 0.3, dim=8, seed=0)
    model = M.HardSharing.mlp(data.tasks, 8, (16,), split=0)
    trainer = M.Trainer(model, "gradnorm", device="cpu")
    with pytest.raises(ValueError, match="GradNorm needs a shared layer"):
        trainer.train_step(*data[:8])


def test_dwa_weights_follow_the_loss_ratio_formula():
    b = DynamicWeightAverage(temperature=2.0)
    b.setup(3)
    L = torch.tensor([1.0, 1.0, 1.0])
    assert torch.equal(b.weights(L), torch.ones(3))
    b.end_epoch(torch.tensor([1.0, 2.0, 4.0]), None)
    assert torch.equal(b.weights(L), torch.ones(3))  # w = 1 for the first two epochs
    b.end_epoch(torch.tensor([0.5, 2.0, 4.4]), None)
    r = torch.tensor([0.5, 1.0, 1.1])
    expected = 3 * torch.exp(r / 2) / torch.exp(r / 2).sum()
    assert torch.allclose(b.weights(L), expected)
    assert torch.isclose(b.weights(L).sum(), torch.tensor(3.0))
    assert b.weights(L).argmax() == 2  # the task whose loss fell least gets most weight


def test_dtp_focal_weights_favour_the_hardest_task():
    tasks = M.TaskSet([M.classification("a", 10), M.classification("b", 10), M.regression("c")])
    b = DynamicTaskPrioritization(gamma=1.0, decay=0.5, normalize=False)
    b.setup(3)
    b.tasks = tasks
    assert torch.equal(b.weights(torch.ones(3)), torch.ones(3))  # before the first epoch
    scores = {"a": {"accuracy": 0.9}, "b": {"accuracy": 0.5}, "c": {"mse": 2.0}}
    b.end_epoch(torch.ones(3), scores)
    kappa = torch.tensor([0.9, 0.5, math.exp(-1.0)])  # mse mapped to exp(-m / m0), m0 = first value
    assert torch.allclose(b.kappa, kappa)
    assert torch.allclose(b.weights(torch.ones(3)), -(1 - kappa) * torch.log(kappa))
    b.end_epoch(torch.ones(3), {"a": {"accuracy": 0.7}, "b": {"accuracy": 0.5}, "c": {"mse": 1.0}})
    assert torch.allclose(b.kappa, 0.5 * kappa + 0.5 * torch.tensor([0.7, 0.5, math.exp(-0.5)]))
    normed = DynamicTaskPrioritization()
    normed.setup(2)
    normed.end_epoch(torch.tensor([1.0, 4.0]), None)  # no validation scores: training losses
    normed.end_epoch(torch.tensor([0.5, 3.9]), None)
    w = normed.weights(torch.ones(2))
    assert torch.isclose(w.sum(), torch.tensor(2.0)) and w[1] > w[0]


def test_gls_is_the_geometric_mean_and_reports_its_gradient_as_weights():
    losses = torch.tensor([0.5, 2.0, 8.0], requires_grad=True)
    total, w = GeometricLoss().objective(losses)
    assert torch.isclose(total, torch.tensor(2.0))
    (grad,) = torch.autograd.grad(total, losses)
    assert torch.allclose(grad, w)
    zero_total, zero_w = GeometricLoss().objective(torch.tensor([0.0, 1.0]))
    assert torch.isfinite(zero_total) and torch.isfinite(zero_w).all()


def test_rlw_draws_softmax_weights_that_reproduce_with_the_seed():
    b = RandomLossWeighting()
    torch.manual_seed(3)
    w1, w2 = b.weights(torch.ones(4)), b.weights(torch.ones(4))
    torch.manual_seed(3)
    assert torch.equal(b.weights(torch.ones(4)), w1)
    assert not torch.equal(w1, w2)
    assert (w1 > 0).all() and torch.isclose(w1.sum(), torch.tensor(1.0))


def test_famo_weights_and_logit_update():
    b = FAMO(lr=0.1, gamma=0.0)
    b.setup(2)
    losses = torch.tensor([1.0, 4.0], requires_grad=True)
    total, w = b.objective(losses)
    # equal logits: w_i ∝ 1 / L_i, summing to 1 (the gradient of Σ z_i log L_i / c)
    assert torch.allclose(w, torch.tensor([0.8, 0.2]))
    (grad,) = torch.autograd.grad(total, losses)
    assert torch.allclose(grad, w)
    # task 0 halved its loss, task 1 barely moved -> task 1's logit grows
    xi = b.logits.clone().requires_grad_(True)
    delta = torch.log(torch.tensor([1.0, 4.0])) - torch.log(torch.tensor([0.5, 3.9]))
    (ref,) = torch.autograd.grad(torch.softmax(xi, 0) @ delta, xi)
    assert torch.allclose(b.logit_gradient(torch.tensor([1.0, 4.0]), torch.tensor([0.5, 3.9])), ref)
    b.after_step(lambda: torch.tensor([0.5, 3.9]))
    assert b.logits[1] > b.logits[0]
    _, w_next = b.objective(torch.tensor([1.0, 1.0]))
    assert w_next[1] > w_next[0] and torch.isclose(w_next.sum(), torch.tensor(1.0))


@pytest.mark.parametrize("name", ["uncertainty", "gradnorm", "dwa", "dtp", "famo"])
def test_stateful_weightings_survive_a_checkpoint(name, tmp_path):
    data = correlated_regression(64, 0.5, dim=6, seed=0)
    M.seed_everything(0)
    trainer = M.Trainer(M.HardSharing.mlp(data.tasks, 6, (8,)), name, batch_size=16, device="cpu")
    trainer.fit(data, epochs=3)
    trainer.save(tmp_path / "c.pt")
    other = M.Trainer(M.HardSharing.mlp(data.tasks, 6, (8,)), name, batch_size=16, device="cpu")
    other.load(tmp_path / "c.pt")
    for (k, a), b in zip(trainer.balancer.state_dict().items(), other.balancer.state_dict().values()):
        assert torch.equal(a, b), k
