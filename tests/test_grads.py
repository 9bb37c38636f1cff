import pytest
import torch

import mtlkit as M
from mtlkit.data import correlated_regression
from mtlkit.grads import conflict_stats, task_gradients, update_cosines


def _mlp_losses(T=3, seed=0):
    data = correlated_regression(32, 0.5, dim=6, num_tasks=T, seed=seed)
    M.seed_everything(seed)
    model = M.HardSharing.mlp(data.tasks, 6, (8, 5))
    out = model(data.x)
    return model, out, data.tasks.losses(out.outputs, data.targets)


def _lenet_losses():
    tasks = M.TaskSet([M.classification("left", 10), M.classification("right", 10)])
    M.seed_everything(0)
    model = M.HardSharing.lenet(tasks)
    x = torch.randn(4, 1, 36, 36)
    out = model(x)
    y = {"left": torch.randint(10, (4,)), "right": torch.randint(10, (4,))}
    return model, out, tasks.losses(out.outputs, y)


@pytest.mark.parametrize("build", [_mlp_losses, _lenet_losses], ids=["mlp", "lenet"])
@pytest.mark.parametrize("on", ["params", "z"])
def test_batched_gradients_equal_the_loop(build, on):
    model, out, losses = build()
    inputs = model.shared_parameters() if on == "params" else [out.z]
    loop = task_gradients(losses, inputs, batched=False)
    batched = task_gradients(losses, inputs, batched=True)
    assert loop.shape == (len(losses), sum(p.numel() for p in inputs))
    assert torch.allclose(loop, batched, atol=1e-6, rtol=1e-5)
    for i in range(len(losses)):
        row = torch.cat([g.flatten() for g in torch.autograd.grad(losses[i], inputs, retain_graph=True)])
        assert torch.allclose(loop[i], row, atol=1e-7)


class _NoVmap(torch.autograd.Function):
    """Identity whose backward branches on data: vmap cannot batch it."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad if bool(grad.sum() != 12345.0) else grad * 2


def test_batched_falls_back_to_the_loop_when_vmap_fails():
    w = torch.randn(4, requires_grad=True)
    y = _NoVmap.apply(w)
    losses = torch.stack([(y ** 2).sum(), y.sum(), (3 * y).sum()])
    G = task_gradients(losses, [w], batched=True)
    assert torch.allclose(G, torch.stack([2 * w.detach(), torch.ones(4), 3 * torch.ones(4)]))


def test_unused_inputs_give_zero_columns_and_bad_shapes_are_named():
    a = torch.randn(3, requires_grad=True)
    b = torch.randn(2, requires_grad=True)
    losses = torch.stack([(a ** 2).sum(), a.sum()])
    for batched in (False, True):
        G = task_gradients(losses, [a, b], batched=batched)
        assert G.shape == (2, 5) and torch.equal(G[:, 3:], torch.zeros(2, 2))
    one = task_gradients(losses[:1], [a, b], batched=True)
    assert torch.allclose(one[0, :3], 2 * a.detach())
    with pytest.raises(ValueError, match=r"losses must be a vector \(T,\), got shape \(2, 1\)"):
        task_gradients(losses[:, None], [a])


def test_update_cosines():
    G = torch.tensor([[3.0, 0.0], [0.0, 1.0], [0.0, 0.0], [-3.0, 0.0]])
    c = update_cosines(G, torch.tensor([1.0, 1.0]))
    assert torch.allclose(c, torch.tensor([2 ** -0.5, 2 ** -0.5, 0.0, -(2 ** -0.5)]))
    assert torch.equal(update_cosines(G, torch.zeros(2)), torch.zeros(4))
    with pytest.raises(ValueError, match=r"update must have shape \(2,\)"):
        update_cosines(G, torch.zeros(3))


def test_conflict_stats_count_the_pairs_with_a_negative_inner_product():
    G = torch.tensor([[1.0, 0.0], [-1.0, 0.1], [0.0, 2.0]])
    out = conflict_stats(G)
    assert out["conflicting_pairs"] == 1 and out["pairs"] == 3
    assert conflict_stats(G[:1])["pairs"] == 0
