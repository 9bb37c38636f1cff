"""Every registered architecture against the MultiTaskModel contract, checked by autograd.

Parametrised over ``MODELS``, so a newly registered architecture is covered as soon
as it is registered. How a model is built follows its constructor: ``in_dim`` ->
vectors, ``image_size`` -> small images, ``in_channels`` only -> dense prediction.
"""
from __future__ import annotations

import pytest
import torch

import mtlkit as M
from mtlkit.balancers import BALANCERS, GradientBalancer
from mtlkit.data import MultiTaskDataset
from mtlkit.models import (MMoE, MODELS, MTAN, PLE, AdaShare, CrossStitch, LearnedBranching, Sluice, SoftSharing,
                           TaskRouting, build_architecture)
from mtlkit.tasks import TaskSet, classification, regression

TASKS = TaskSet([regression("a"), regression("b"), classification("c", 3)])
IMAGE, DIM, BATCH = 16, 6, 8
ARCHITECTURES = MODELS.names()


SHAPES = {"vector": (DIM,), "image": (1, IMAGE, IMAGE), "dense": (3, IMAGE, IMAGE)}


def input_kind(name: str) -> str:
    return MODELS[name].inputs


def build(name: str, tasks: TaskSet = TASKS) -> M.MultiTaskModel:
    M.seed_everything(0)
    return build_architecture(name, tasks, SHAPES[input_kind(name)])


def batch(name: str, n: int = BATCH, seed: int = 0) -> MultiTaskDataset:
    """Learnable targets: each task is a fixed function of the input."""
    g = torch.Generator().manual_seed(seed)
    kind = input_kind(name)
    x = torch.randn(n, *SHAPES[kind], generator=g)
    if kind == "dense":
        s = x.mean(1, keepdim=True)
        targets = {"a": s, "b": -x[:, :1], "c": (x[:, 0] > 0).long() + (x[:, 1] > 0).long()}
    else:
        s = x.flatten(1) @ torch.randn(x[0].numel(), 3, generator=g) / x[0].numel() ** 0.5
        targets = {"a": s[:, :1], "b": s[:, 1:2].tanh(), "c": s.argmax(1)}
    return MultiTaskDataset(x, targets, TASKS)


def task_losses(model: M.MultiTaskModel, data: MultiTaskDataset) -> tuple[torch.Tensor, M.MTLOutput]:
    torch.manual_seed(0)  # AdaShare draws Gumbel noise: the same draw in every forward of a test
    return model.loss_vector(data.x, data.targets)


def trainable(model):
    return [p for p in model.parameters() if p.requires_grad]


def reached(model, data) -> list[set[int]]:
    """For each task, the ids of the parameters its loss gives a non-zero gradient."""
    model.train()
    losses, _ = task_losses(model, data)
    params = trainable(model)
    out = []
    for t in range(len(TASKS)):
        grads = torch.autograd.grad(losses[t], params, retain_graph=True, allow_unused=True)
        out.append({id(p) for p, g in zip(params, grads) if g is not None and g.abs().sum() > 0})
    return out


def ids(params) -> set[int]:
    return {id(p) for p in params}


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_forward_gives_every_task_its_output_shape(name):
    model, data = build(name), batch(name)
    out = model(data.x)
    assert isinstance(out, M.MTLOutput) and list(out.outputs) == TASKS.names
    for n in TASKS:
        TASKS[n].check(out.outputs[n], data.targets[n])
        assert torch.isfinite(out.outputs[n]).all(), n


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_shared_and_task_parameters_are_what_autograd_says(name):
    """shared = reached by >= 2 task losses; task t's = reached by t's loss only; nothing is left out."""
    model, data = build(name), batch(name)
    per_task = reached(model, data)
    everything = ids(trainable(model))
    assert set().union(*per_task) == everything, "some parameters get no gradient from any task"
    counts = {p: sum(p in r for r in per_task) for p in everything}
    assert ids(model.shared_parameters()) == {p for p, c in counts.items() if c >= 2}
    for t, n in enumerate(TASKS):
        assert ids(model.task_parameters(n)) == {p for p in per_task[t] if counts[p] == 1}, n


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_z_is_the_only_way_shared_parameters_reach_the_losses(name):
    """Back-propagating ∇_z L_t through z gives exactly ∇_θ L_t: what on="z" balancers rely on."""
    model, data = build(name), batch(name)
    model.train()
    losses, out = task_losses(model, data)
    if out.z is None or not out.z.requires_grad:
        pytest.skip(f"{name} has no shared representation z")
    shared = model.shared_parameters()
    for t, n in enumerate(TASKS):
        direct = torch.autograd.grad(losses[t], shared, retain_graph=True, allow_unused=True)
        dz = torch.autograd.grad(losses[t], out.z, retain_graph=True)[0]
        via_z = torch.autograd.grad(out.z, shared, dz, retain_graph=True, allow_unused=True)
        for p, a, b in zip(shared, direct, via_z):
            a = torch.zeros_like(p) if a is None else a
            b = torch.zeros_like(p) if b is None else b
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=f"task {n}")


class SumOfGradients(GradientBalancer):
    """d = Σ_i g_i: must reproduce plain back-propagation of Σ_i L_i exactly."""

    name = "sum_of_gradients"

    def aggregate(self, G):
        return G.sum(0)


def grads_after(model, data, backward) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    losses, out = task_losses(model, data)
    backward(losses, out)
    return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in trainable(model)]


@pytest.mark.parametrize("on", ["params", "z"])
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_gradient_balancers_reproduce_backpropagation(name, on):
    model, data = build(name), batch(name)
    model.train()
    expected = grads_after(model, data, lambda losses, out: losses.sum().backward())
    balancer = SumOfGradients(on=on)
    balancer.setup(len(TASKS))
    _, out = task_losses(model, data)
    has_z = out.z is not None and out.z.requires_grad
    if on == "z" and not has_z and model.shared_parameters():
        with pytest.raises(ValueError, match="no shared representation z"):
            grads_after(model, data, lambda losses, out: balancer.backward(losses, model, out))
        return
    got = grads_after(model, data, lambda losses, out: balancer.backward(losses, model, out))
    for (pname, _), a, b in zip(model.named_parameters(), expected, got):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6, msg=pname)


def _fit(name, balancer="equal", steps=30, **kwargs):
    model, data = build(name), batch(name, n=64)
    trainer = M.Trainer(model, balancer, lr=1e-2, batch_size=32, seed=0, device="cpu", **kwargs)
    before = trainer.evaluate(data)
    trainer.fit(data, steps=steps)
    return before, trainer.evaluate(data)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_a_few_trainer_steps_lower_the_loss(name):
    before, after = _fit(name)
    total = lambda s: sum(s[n]["loss"] for n in TASKS)  # noqa: E731
    assert total(after) < 0.8 * total(before), (before, after)


@pytest.mark.parametrize("balancer", [b for b in ("pcgrad", "mgda") if b in BALANCERS])
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_registered_gradient_balancers_train_every_architecture(name, balancer):
    model, data = build(name), batch(name)
    _, out = task_losses(model, data)
    places = ["params"] + (["z"] if out.z is not None and out.z.requires_grad else [])
    for on in places:
        model = build(name)
        start = [p.detach().clone() for p in model.parameters()]
        trainer = M.Trainer(model, M.make_balancer(balancer, on=on), lr=1e-2, batch_size=BATCH, seed=0, device="cpu")
        result = trainer.fit(data, steps=2)
        assert all(torch.isfinite(torch.tensor(step)).all() for step in result["loss"])
        assert any(not torch.equal(a, b) for a, b in zip(start, model.parameters())), on


# -- the regulariser hook ------------------------------------------------------------------------------
def test_trainer_adds_the_models_regularizer_to_the_update():
    data = batch("soft")
    model = SoftSharing.mlp(TASKS, DIM, widths=(8, 4), strength=0.5)
    expected = grads_after(model, data, lambda losses, out: (losses.sum() + model.regularizer()).backward())
    trainer = M.Trainer(model, "equal", optimizer="sgd", lr=1.0, batch_size=BATCH, seed=0, device="cpu")
    start = [p.detach().clone() for p in trainable(model)]
    trainer.train_step(data.x, data.targets)
    for p0, p, g in zip(start, trainable(model), expected):
        torch.testing.assert_close(p0 - p.detach(), g)


@pytest.mark.parametrize("penalty", SoftSharing.PENALTIES)
def test_soft_sharing_penalty_pulls_the_towers_together(penalty):
    def spread(strength):
        M.seed_everything(0)
        model = SoftSharing.mlp(TASKS, DIM, widths=(8, 4), penalty=penalty, strength=strength)
        M.Trainer(model, "equal", lr=1e-2, batch_size=32, seed=0, device="cpu").fit(batch("soft", 64), steps=40)
        return model.penalty().item()
    assert spread(1.0) < 0.8 * spread(0.0)
    model = SoftSharing.mlp(TASKS, DIM, widths=(8, 4), penalty=penalty)
    with torch.no_grad():
        for n in TASKS:
            for p, q in zip(model.towers[n].parameters(), model.towers["a"].parameters()):
                p.copy_(q)
    expected = 0.0 if penalty == "l2" else float(sum(torch.linalg.svdvals(torch.stack([q.detach().flatten()] * 3)).sum()
                                                     for q in model.towers["a"].parameters()))
    assert float(model.penalty().detach()) == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ValueError, match="penalty must be one of"):
        SoftSharing.mlp(TASKS, DIM, penalty="l1")


def test_models_without_a_penalty_add_nothing():
    assert build("hard").regularizer() is None and build("cross_stitch").regularizer() is None


# -- what each architecture exposes for plots ---------------------------------------------------------
def test_cross_stitch_alphas_start_near_identity_with_rows_summing_to_one():
    model = CrossStitch.mlp(TASKS, DIM, widths=(8, 8, 4))
    alphas = model.alphas()
    assert alphas.shape == (2, 3, 3)
    torch.testing.assert_close(alphas.sum(-1), torch.ones(2, 3))
    torch.testing.assert_close(alphas[0, 0], torch.tensor([0.9, 0.1, 0.1]) / 1.1)
    two = CrossStitch.mlp(TaskSet([regression("a"), regression("b")]), DIM).alphas()[0]
    torch.testing.assert_close(two, torch.tensor([[0.9, 0.1], [0.1, 0.9]]))


def test_nddr_names_a_training_batch_too_small_for_batch_norm():
    model = MODELS["nddr"].build(TASKS, (DIM,))
    x = torch.randn(1, DIM)
    with pytest.raises(ValueError, match="NDDR's batch normalisation needs at least 2 examples.*got a batch of 1"):
        model(x)
    model.eval()
    assert model(x).outputs["c"].shape == (1, 3)  # running statistics: one example is fine at evaluation
    model.train()
    assert model(torch.randn(2, DIM)).outputs["a"].shape == (2, 1)


def test_sluice_exposes_subspace_alphas_and_layer_betas():
    model = Sluice.mlp(TASKS, DIM, width=8, depth=3, subspaces=2)
    assert model.alphas().shape == (3, 6, 6) and model.betas().shape == (3, 3)
    with pytest.raises(ValueError, match="divisible by the number of subspaces"):
        Sluice.mlp(TASKS, DIM, width=9)


@pytest.mark.parametrize("cls,kwargs", [(MMoE, {"num_experts": 5}), (PLE, {"levels": 1}), (PLE, {"levels": 2})])
def test_gate_usage_is_a_distribution_per_task(cls, kwargs):
    model = cls.mlp(TASKS, DIM, **kwargs)
    with pytest.raises(RuntimeError, match="needs a forward pass first"):
        model.gate_usage()
    model(torch.randn(BATCH, DIM))
    usage = model.gate_usage()
    width = 5 if cls is MMoE else 3  # PLE: 1 task expert + 2 shared experts
    assert list(usage) == TASKS.names and all(u.shape == (width,) for u in usage.values())
    torch.testing.assert_close(torch.stack(list(usage.values())).sum(1), torch.ones(3))


def test_mtan_masks_on_images_are_images_in_the_unit_interval():
    model = MTAN.cnn(TASKS, in_channels=1, image_size=IMAGE, widths=(4, 8))
    masks = model.masks(torch.randn(2, 1, IMAGE, IMAGE))
    assert [m.shape for m in masks["a"]] == [(2, 4, 8, 8), (2, 8, 4, 4)]
    assert all(((m >= 0) & (m <= 1)).all() for ms in masks.values() for m in ms)


def test_task_routing_masks_are_fixed_seeded_and_keep_the_asked_fraction():
    a, b = TaskRouting.mlp(TASKS, DIM, widths=(10, 20), keep=0.3, seed=1), TaskRouting.mlp(TASKS, DIM, (10, 20), 0.3, 1)
    assert all(torch.equal(x, y) for x, y in zip(a.masks(), b.masks()))
    assert [m.sum(1).tolist() for m in a.masks()] == [[3.0] * 3, [6.0] * 3]
    other = TaskRouting.mlp(TASKS, DIM, widths=(10, 20), keep=0.3, seed=2)
    assert not all(torch.equal(x, y) for x, y in zip(a.masks(), other.masks()))
    assert not any(p is m for p in a.parameters() for m in a.masks())
    with pytest.raises(ValueError, match=r"keep .* must lie in \(0, 1\]"):
        TaskRouting.mlp(TASKS, DIM, keep=0.0)


def test_adashare_policy_penalty_and_hard_decisions_at_evaluation():
    model = AdaShare.mlp(TASKS, DIM, width=8, depth=3)
    torch.testing.assert_close(model.policy(), torch.full((3, 3), 0.5))
    with torch.no_grad():
        model.logits["a"][1] = torch.tensor([-2.0, 2.0])  # task a skips block 1
    x = torch.randn(4, DIM)
    model.eval()
    skipped = model(x).outputs["a"]
    with torch.no_grad():
        model.blocks[1][0].weight.mul_(3.0)  # changing a skipped block does not change task a at evaluation
    torch.testing.assert_close(model(x).outputs["a"], skipped)
    # the sparsity term lowers the penalty when blocks are skipped
    assert model.regularizer().item() < AdaShare.mlp(TASKS, DIM, width=8, depth=3).regularizer().item()


def test_learned_branching_split_depths_and_cost():
    model = LearnedBranching.mlp(TASKS, DIM, widths=(8, 8, 4), cost=0.1)
    torch.testing.assert_close(model.expected_split(), torch.full((3,), 1.5))
    torch.testing.assert_close(model.regularizer(), torch.tensor(0.1 * 3 * 0.5))
    with torch.no_grad():
        for n in TASKS:
            model.split_logits[n].copy_(torch.tensor([0.0, 0.0, 0.0, 30.0]))  # share every layer
    x = torch.randn(4, DIM)
    out = model(x)
    hard = M.HardSharing(TASKS, lambda: list(model.trunk), lambda task: model.heads[task.name], 3, (DIM,))
    for n in TASKS:
        torch.testing.assert_close(out.outputs[n], hard(x).outputs[n], rtol=1e-4, atol=1e-5)


# -- the experiments and the panel of notebooks 02-03 ----------------------------------------------------
def test_snapshots_record_what_an_architecture_learns_to_share():
    from mtlkit.experiments.architectures import Snapshots, regression_split, train_architecture
    from mtlkit.experiments.transfer import TransferSetup
    train, _ = regression_split(0.5, 0, TransferSetup(n_train=64, n_test=16))
    snap = Snapshots(every=5)
    train_architecture("cross_stitch", train, 10, widths=(8, 4), callbacks=[snap], device="cpu")
    assert snap.steps == [5, 10] and len(snap.values) == 4 and all(len(v) == 2 for v in snap.values.values())


def test_architecture_panel_trains_and_rebuilds_when_the_dropdown_changes():
    from mtlkit.experiments.transfer import TransferSetup
    from mtlkit.widgets.architectures import ArchitecturePanel, vector_architectures
    assert "cross_stitch" in vector_architectures() and "mtan_cnn" not in vector_architectures()
    panel = ArchitecturePanel("cross_stitch", rho=0.5, steps=4, eval_every=2,
                              setup=TransferSetup(n_train=64, n_test=16), device="cpu")
    panel.train()
    panel.wait(60)
    assert panel.trainer.step_count == 4 and panel.steps_seen == [0, 2, 4]
    assert len(panel.plots["inside"]) == 4 and len(panel.plots["inside"][0].y) == 3
    assert [t.name for t in panel.plots["mse"]] == ["t1", "t2"] and len(panel.plots["mse"][0].y) == 3
    panel.architecture.value = "mmoe"
    assert panel.split.disabled and panel.trainer.step_count == 0
    panel.train()
    panel.wait(60)
    assert {t.name.split(" →")[0] for t in panel.plots["inside"]} == {"gate t1", "gate t2"}


LEARNS_SHARING = {"soft", "soft_cnn", "cross_stitch", "cross_stitch_cnn", "sluice", "mmoe", "cgc", "ple",
                  "adashare", "adashare_cnn", "learned_branching"}


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_architecture_says_what_it_learned_about_sharing(name):
    model = build(name)
    task_losses(model, batch(name))   # gated models report the gates of their last batch
    summary = model.sharing_summary()
    assert all(isinstance(k, str) and isinstance(v, float) for k, v in summary.items())
    assert bool(summary) == (name in LEARNS_SHARING), f"{name}: {sorted(summary)[:3]}"
