"""The GradNorm paper's synthetic regression: f_i(x) = σ_i tanh((B + ε_i) x), with optional label noise."""
import pytest
import torch

from mtlkit.data import MultiTaskDataset, gradnorm_toy
from mtlkit.data.gradnorm_toy import PAPER_SIGMAS


def test_paper_defaults_shapes_and_tasks():
    data = gradnorm_toy(50)
    assert isinstance(data, MultiTaskDataset) and PAPER_SIGMAS == (1.0, 100.0)
    assert data.tasks.names == ["t1", "t2"] and data.x.shape == (50, 250)
    assert all(data.targets[n].shape == (50, 100) and data.tasks[n].out_dim == 100 for n in data.tasks)
    assert torch.allclose(data.x.norm(dim=1), torch.ones(50)), "inputs are rescaled to unit norm"


def test_seeded():
    a, b, c = gradnorm_toy(20, seed=3), gradnorm_toy(20, seed=3), gradnorm_toy(20, seed=4)
    assert torch.equal(a.x, b.x) and all(torch.equal(a.targets[n], b.targets[n]) for n in a.tasks)
    assert not torch.equal(a.targets["t1"], c.targets["t1"])


def test_sigma_only_scales_each_task():
    unit = gradnorm_toy(200, sigmas=(1.0, 1.0, 1.0), in_dim=12, out_dim=5, seed=1)
    scaled = gradnorm_toy(200, sigmas=(0.5, 10.0, 300.0), in_dim=12, out_dim=5, seed=1)
    for name, s in zip(unit.tasks, (0.5, 10.0, 300.0)):
        assert torch.allclose(scaled.targets[name], s * unit.targets[name], rtol=1e-5)
        assert scaled.targets[name].abs().max() <= s, "tanh bounds |f_i| by σ_i"
    mse_of_zero = [float((scaled.targets[n] ** 2).mean()) for n in scaled.tasks]
    assert mse_of_zero[2] / mse_of_zero[0] > 1e5, "loss scales differ by σ² (orders of magnitude)"


def test_b_is_shared_and_epsilon_is_each_tasks_own():
    same = gradnorm_toy(300, sigmas=(1.0, 1.0), in_dim=10, out_dim=4, eps_std=0.0)
    assert torch.equal(same.targets["t1"], same.targets["t2"]), "without ε_i every task is the same function"
    data = gradnorm_toy(300, sigmas=(1.0, 1.0), in_dim=10, out_dim=4)
    y1, y2 = data.targets["t1"].flatten(), data.targets["t2"].flatten()
    corr = float(torch.corrcoef(torch.stack([y1, y2]))[0, 1])
    assert 0.5 < corr < 0.99, f"B (std 10) dominates ε_i (std 3.5): related but distinct tasks, corr={corr:.3f}"
    alone = gradnorm_toy(300, sigmas=(1.0, 1.0), in_dim=10, out_dim=4, b_std=0.0)
    corr0 = float(torch.corrcoef(torch.stack([alone.targets["t1"].flatten(), alone.targets["t2"].flatten()]))[0, 1])
    assert abs(corr0) < 0.2, f"without B the tasks share nothing, corr={corr0:.3f}"


def test_label_noise_has_the_requested_std_per_task():
    clean = gradnorm_toy(4000, sigmas=(1.0, 1.0, 1.0), in_dim=8, out_dim=10, seed=2)
    noisy = gradnorm_toy(4000, sigmas=(1.0, 1.0, 1.0), in_dim=8, out_dim=10, noise=(0.0, 0.3, 1.0), seed=2)
    assert torch.equal(clean.x, noisy.x) and torch.equal(clean.targets["t1"], noisy.targets["t1"])
    for name, std in zip(["t2", "t3"], (0.3, 1.0)):
        residual = noisy.targets[name] - clean.targets[name]
        assert float(residual.std()) == pytest.approx(std, rel=0.03)
    both = gradnorm_toy(4000, sigmas=(1.0, 1.0), in_dim=8, out_dim=10, noise=0.5, seed=2)
    assert float((both.targets["t2"] - clean.targets["t2"]).std()) == pytest.approx(0.5, rel=0.03)


def test_adding_a_task_keeps_the_inputs_and_the_earlier_tasks():
    two = gradnorm_toy(30, sigmas=(1.0, 5.0), in_dim=8, out_dim=3, seed=7)
    three = gradnorm_toy(30, sigmas=(1.0, 5.0, 9.0), in_dim=8, out_dim=3, seed=7)
    assert torch.equal(two.x, three.x)
    assert all(torch.equal(two.targets[n], three.targets[n]) for n in two.tasks)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "n, in_dim and out_dim must be >= 1"),
    (dict(in_dim=0), "n, in_dim and out_dim must be >= 1"),
    (dict(sigmas=()), "at least one task"),
    (dict(sigmas=(1.0, -2.0)), "positive"),
    (dict(sigmas=(1.0, float("inf"))), "positive and finite"),
    (dict(noise=(0.1, 0.2, 0.3)), r"noise must be one number or one per task \(2\)"),
    (dict(noise=-1.0), ">= 0"),
    (dict(b_std=-1.0), ">= 0"),
])
def test_bad_input(kwargs, match):
    kwargs.setdefault("n", 10)
    with pytest.raises(ValueError, match=match):
        gradnorm_toy(**kwargs)
