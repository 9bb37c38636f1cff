import itertools

import pytest
import torch

import mtlkit as M
from mtlkit.balancers import BALANCERS, FixedWeighting, GradientBalancer
from mtlkit.data import correlated_regression
from mtlkit.grads import NonFiniteError


def _setup(seed=0, split=2, balancer="equal", device="cpu", optimizer="adam"):
    data = correlated_regression(256, 0.8, dim=10, seed=seed)
    M.seed_everything(seed)
    model = M.HardSharing.mlp(data.tasks, 10, (16, 8), split=split)
    return data, M.Trainer(model, balancer, lr=1e-2, batch_size=32, seed=seed, device=device, optimizer=optimizer)


def test_training_lowers_every_task_loss():
    data, trainer = _setup()
    before = trainer.evaluate(data)
    trainer.fit(data, epochs=15)
    after = trainer.evaluate(data)
    for name in data.tasks:
        assert after[name]["mse"] < 0.7 * before[name]["mse"], name
    assert trainer.step_count == 15 * 8 and trainer.epoch == 15
    assert len(trainer.history["loss"]) == 120 and len(trainer.history["epoch_loss"]) == 15


def test_seeded_runs_are_identical_and_seeds_matter(devices):
    for device in devices:
        runs = []
        for seed in (0, 0, 1):
            data, trainer = _setup(seed=0, device=device)
            trainer.generator.manual_seed(seed)
            trainer.fit(data, steps=40)
            runs.append(torch.cat([p.detach().flatten().cpu() for p in trainer.model.parameters()]))
        assert torch.equal(runs[0], runs[1])
        assert not torch.equal(runs[0], runs[2])


def test_steps_stop_exactly_and_fit_needs_one_budget():
    data, trainer = _setup()
    trainer.fit(data, steps=13)
    assert trainer.step_count == 13
    with pytest.raises(ValueError, match="exactly one of epochs or steps"):
        trainer.fit(data, epochs=1, steps=1)


def test_nan_loss_names_its_task_before_any_update():
    data, trainer = _setup()
    data.targets["t2"][:] = 0.0
    before = [p.detach().clone() for p in trainer.model.parameters()]
    x, y = data[:32]
    y = dict(y)
    y["t2"] = torch.full_like(y["t2"], float("inf"))
    with pytest.raises(NonFiniteError, match=r"non-finite loss at step 0 for task t2 \(loss=inf\)"):
        trainer.train_step(x, y)
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


def test_nan_gradient_names_its_task_before_any_update():
    data, trainer = _setup()
    head = trainer.model.heads["t1"]
    hook = head.weight.register_hook(lambda g: torch.full_like(g, float("nan")))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    x, y = data[:32]
    with pytest.raises(NonFiniteError, match="non-finite gradient w.r.t. the model parameters for task t1"):
        trainer.train_step(x, y)
    hook.remove()
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


def test_wrong_head_shape_names_both_shapes():
    data, trainer = _setup()
    trainer.model.heads["t2"] = torch.nn.Linear(8, 3)
    x, y = data[:32]
    with pytest.raises(ValueError, match=r"task 't2': head output has shape \(32, 3\) but targets have shape \(32, 1\)"):
        trainer.train_step(x, y)


def test_fixed_weights_scale_gradients_and_can_change_mid_run():
    data, trainer = _setup(balancer=FixedWeighting([1.0, 0.0]))
    x, y = data[:64]
    trainer.train_step(x, y)
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in trainer.model.task_parameters("t2"))
    trainer.balancer.set_weights([0.5, 2.0])
    info = trainer.train_step(x, y).info
    assert info.weights.tolist() == [0.5, 2.0]
    with pytest.raises(ValueError, match="FixedWeighting has 3 weights but the model has 2 tasks"):
        trainer.set_balancer(FixedWeighting([1, 1, 1]))
    with pytest.raises(KeyError, match="unknown balancer 'nope'"):
        trainer.set_balancer("nope")


class MeanGradient(GradientBalancer):
    name = "mean_test"

    def aggregate(self, G):
        return G.mean(dim=0)


@pytest.mark.parametrize("on", ["params", "z"])
def test_gradient_balancer_applies_its_direction_to_shared_and_own_grads_to_heads(on):
    data, trainer = _setup(balancer=MeanGradient(on=on), optimizer="sgd")
    x, y = data[:32]
    _, ref = _setup(balancer=FixedWeighting([0.5, 0.5]), optimizer="sgd")
    trainer.model.load_state_dict(ref.model.state_dict())
    info = trainer.train_step(x, y).info
    ref.train_step(x, y)
    model, ref_model = trainer.model, ref.model
    # the mean of task gradients equals the gradient of the mean loss on the trunk ...
    assert info.grads.shape[0] == 2
    for p, q in zip(model.shared_parameters(), ref_model.shared_parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    # ... while each head got its own task's full (unweighted) gradient, so heads differ
    assert not torch.allclose(model.heads["t1"].weight, ref_model.heads["t1"].weight)


def test_representation_gradients_need_a_trunk():
    data, trainer = _setup(split=0, balancer=MeanGradient(on="z"))
    x, y = data[:32]
    trainer.train_step(x, y)  # nothing shared: every task keeps its own gradient
    with pytest.raises(ValueError, match="on must be 'params'"):
        MeanGradient(on="trunk")


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    data, trainer = _setup()
    trainer.fit(data, steps=10)
    path = tmp_path / "ckpt.pt"
    trainer.save(path)
    state = torch.load(path, weights_only=True)
    assert state["step"] == 10
    _, other = _setup(seed=3)
    other.load(path)
    trainer.fit(data, steps=5)
    other.fit(data, steps=5)
    for p, q in zip(trainer.model.parameters(), other.model.parameters()):
        assert torch.equal(p, q)


def test_single_task_baselines_train_one_model_per_task():
    data = correlated_regression(300, 0.5, dim=10, seed=0)
    train, test = data.split(200, 100)
    scores = M.fit_single_task_baselines(lambda t: M.HardSharing.mlp(t, 10, (16,)), train, test,
                                         steps=30, lr=1e-2, device="cpu")
    assert set(scores) == {"t1", "t2"} and {"loss", "mse", "mae"} <= set(scores["t1"])


def test_balancer_registry_has_the_basics():
    assert {"equal", "fixed"} <= set(BALANCERS.names())
    assert M.make_balancer("equal").name == "equal"


def test_device_choice_prefers_cuda(monkeypatch):
    monkeypatch.delenv("MTLKIT_DEVICE", raising=False)
    assert M.default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("MTLKIT_DEVICE", "cpu")
    assert M.default_device().type == "cpu"


def test_quick_mode_shrinks_steps(monkeypatch):
    monkeypatch.setenv("MTLKIT_QUICK", "1")
    assert M.steps(1000, 50) == 50
    monkeypatch.setenv("MTLKIT_QUICK", "0")
    assert M.steps(1000, 50) == 1000
    with pytest.raises(ValueError, match="positive"):
        M.steps(0, 1)


@pytest.mark.cuda
def test_cuda_training_runs_and_matches_cpu_shapes():
    data, trainer = _setup(device="cuda")
    trainer.fit(data, steps=5)
    assert next(trainer.model.parameters()).is_cuda


def test_run_is_the_one_loop_fit_consumes():
    data, trainer = _setup()           # 256 examples, batch 32: 8 steps an epoch
    ends = [r.epoch_end for r in itertools.islice(trainer.run(data), 20)]
    assert ends == [k % 8 == 7 for k in range(20)]
    assert trainer.epoch == 2 and len(trainer.history["epoch_loss"]) == 2   # ended as its last step was yielded
    data2, fitted = _setup()
    fitted.fit(data2, steps=20)        # the same loop, then the partial third epoch is closed
    assert fitted.epoch == 3 and fitted.history["loss"] == trainer.history["loss"]
    assert fitted.history["epoch_loss"][:2] == trainer.history["epoch_loss"]
