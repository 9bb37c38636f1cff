"""Every registered balancer trains real models end to end through the Trainer, and fails loudly on NaN."""
import pytest
import torch

import mtlkit as M
from mtlkit.balancers import BALANCERS, gradient_methods, weighting_methods
from mtlkit.data import correlated_regression, multimnist
from mtlkit.grads import NonFiniteError

GRADIENT = gradient_methods()
WEIGHTING = weighting_methods()
CASES = [(n, None) for n in WEIGHTING] + [(n, on) for n in GRADIENT for on in ("params", "z")]


def build(name: str, on: str | None, T: int = 2):
    kwargs = {"weights": [1.0] * T} if name == "fixed" else {}
    if on is not None:
        kwargs["on"] = on
    return M.make_balancer(name, **kwargs)


@pytest.fixture(scope="module")
def regression_data():
    return correlated_regression(96, 0.5, dim=10, num_tasks=3, seed=0)


@pytest.fixture(scope="module")
def mnist_data():
    train, _ = multimnist(48, 16, seed=0)
    return train


def _fit(model, data, balancer, steps, device="cpu"):
    trainer = M.Trainer(model, balancer, lr=1e-2, batch_size=16, device=device)
    before = [p.detach().clone() for p in model.shared_parameters()]
    trainer.fit(data, steps=steps, val=data)  # several epochs: DWA, DTP and FAMO use their hooks
    assert trainer.step_count == steps
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.shared_parameters()))
    return trainer


def test_registry_covers_every_method_of_the_survey_and_after():
    expected = {"equal", "fixed", "uncertainty", "gradnorm", "dwa", "dtp", "gls", "rlw", "famo", "mgda", "mgda_ub",
                "pcgrad", "graddrop", "gradvac", "cagrad", "imtl_g", "nash_mtl", "aligned_mtl", "upgrad"}
    assert expected <= set(BALANCERS.names())
    assert set(WEIGHTING) | set(GRADIENT) == set(BALANCERS.names())
    for name in BALANCERS.names():
        if name != "fixed":
            for T in (1, 2, 7):
                M.make_balancer(name).setup(T)


@pytest.mark.parametrize("name, on", CASES)
def test_trains_the_correlated_regression_mlp(name, on, regression_data):
    M.seed_everything(0)
    model = M.HardSharing.mlp(regression_data.tasks, 10, (16, 8))
    trainer = _fit(model, regression_data, build(name, on, T=3), steps=14)
    assert trainer.epoch >= 2


@pytest.mark.parametrize("name, on", CASES)
def test_trains_the_multimnist_lenet(name, on, mnist_data):
    M.seed_everything(0)
    _fit(M.HardSharing.lenet(mnist_data.tasks), mnist_data, build(name, on), steps=4)


@pytest.mark.cuda
@pytest.mark.parametrize("name, on", CASES)
def test_trains_on_cuda(name, on, regression_data):
    M.seed_everything(0)
    model = M.HardSharing.mlp(regression_data.tasks, 10, (16, 8))
    trainer = _fit(model, regression_data, build(name, on, T=3), steps=6, device="cuda")
    assert all(b.is_cuda for b in trainer.balancer.buffers() if b.numel())


def _nan_on_task_t1(model):
    """Make task t1's gradient NaN everywhere upstream of its head, while its loss stays finite.

    Only non-zero gradients turn NaN: the other tasks' backward passes send zeros
    through t1's head (the loss vector is one stacked tensor), and those stay 0.
    """
    def forward_hook(module, inputs, output):
        output.register_hook(lambda g: torch.where(g != 0, torch.full_like(g, float("nan")), g))
    return model.heads["t1"].register_forward_hook(forward_hook)


@pytest.mark.parametrize("name, on, where", [("pcgrad", "params", "shared parameters"),
                                             ("mgda", "z", "shared representation z"),
                                             ("uncertainty", None, "model parameters"),
                                             ("gradnorm", None, "model parameters"),
                                             ("famo", None, "model parameters")])
def test_nan_gradient_names_the_task_before_any_update(name, on, where, regression_data):
    M.seed_everything(0)
    model = M.HardSharing.mlp(regression_data.tasks, 10, (16, 8))
    trainer = M.Trainer(model, build(name, on, T=3), lr=1e-2, device="cpu")
    _nan_on_task_t1(model)
    state = [t.detach().clone() for t in [*model.parameters(), *trainer.balancer.parameters(),
                                          *trainer.balancer.buffers()]]
    x, y = regression_data[:16]
    with pytest.raises(NonFiniteError, match=f"non-finite gradient w.r.t. the {where} for task t1;"):
        trainer.train_step(x, y)
    after = [*model.parameters(), *trainer.balancer.parameters(), *trainer.balancer.buffers()]
    assert all(torch.equal(a.nan_to_num(), b.nan_to_num()) and torch.equal(a.isnan(), b.isnan())
               for a, b in zip(state, after))
    assert trainer.step_count == 0


@pytest.mark.parametrize("name", ["nash_mtl", "dwa"])
def test_infinite_loss_names_the_task_before_any_update(name, regression_data):
    M.seed_everything(0)
    model = M.HardSharing.mlp(regression_data.tasks, 10, (16, 8))
    trainer = M.Trainer(model, name, device="cpu")
    before = [p.detach().clone() for p in model.parameters()]
    x, y = regression_data[:16]
    y = dict(y)
    y["t2"] = torch.full_like(y["t2"], float("inf"))
    with pytest.raises(NonFiniteError, match=r"non-finite loss at step 0 for task t2 \(loss=inf\)"):
        trainer.train_step(x, y)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_mgda_loss_normalisation_reads_the_step_losses(regression_data):
    M.seed_everything(0)
    model = M.HardSharing.mlp(regression_data.tasks, 10, (16, 8))
    trainer = M.Trainer(model, M.make_balancer("mgda", normalization="loss+"), device="cpu")
    losses = trainer.train_step(*regression_data[:16]).losses
    assert torch.allclose(trainer.balancer.last_losses.cpu(), losses)
