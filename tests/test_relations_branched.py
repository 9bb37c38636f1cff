"""BranchedNetwork: the MultiTaskModel contract for a grouping, checked by autograd."""
import pytest
import torch

import mtlkit as M
from mtlkit.data import MultiTaskDataset
from mtlkit.models import MODELS
from mtlkit.models.branched import BranchedNetwork
from mtlkit.tasks import TaskSet, classification, regression

TASKS = TaskSet([regression("a"), regression("b"), classification("c", 3), regression("d")])
GROUPS = [["a", "c"], ["b"], ["d"]]


def data(n=16):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 5, generator=g)
    return MultiTaskDataset(x, {"a": x[:, :1], "b": x[:, 1:2].tanh(), "c": (x[:, 2] > 0).long() + (x[:, 3] > 0).long(),
                                "d": -x[:, 4:]}, TASKS)


def build(groups=GROUPS):
    M.seed_everything(0)
    return BranchedNetwork.mlp(TASKS, 5, groups, widths=(8, 4))


def reached(model, batch):
    losses = TASKS.losses(model(batch.x).outputs, batch.targets)
    params = list(model.parameters())
    out = {}
    for t, n in enumerate(TASKS):
        grads = torch.autograd.grad(losses[t], params, retain_graph=True, allow_unused=True)
        out[n] = {id(p) for p, g in zip(params, grads) if g is not None and g.abs().sum() > 0}
    return out


def ids(params):
    return {id(p) for p in params}


def test_forward_shapes_and_z():
    model, batch = build(), data()
    out = model(batch.x)
    assert list(out.outputs) == TASKS.names
    for n in TASKS:
        TASKS[n].check(out.outputs[n], batch.targets[n])
    assert out.z.shape == (16, 4)  # only the trunk of {a, c} is shared
    assert build([["a"], ["b"], ["c"], ["d"]])(batch.x).z is None


def test_a_tasks_loss_reaches_only_its_group_trunk_and_its_head():
    model, batch = build(), data()
    hit = reached(model, batch)
    for n in TASKS:
        k = model.group_of[n]
        assert hit[n] == ids(model.trunks[k].parameters()) | ids(model.heads[n].parameters()), n


def test_shared_parameters_are_the_trunks_of_groups_with_two_or_more_tasks():
    model = build()
    assert ids(model.shared_parameters()) == ids(model.trunks[0].parameters())
    assert ids(model.task_parameters("b")) == ids(model.trunks[1].parameters()) | ids(model.heads["b"].parameters())
    assert ids(model.task_parameters("a")) == ids(model.heads["a"].parameters())
    one = build([TASKS.names])
    assert ids(one.shared_parameters()) == ids(one.trunks.parameters())
    assert "trunk 1" in model.describe() and "a, c" in model.describe()


def test_registered_and_trains_with_a_gradient_balancer():
    model = MODELS["branched"].build(TASKS, (5,), groups=GROUPS, widths=(8, 4))
    trainer = M.Trainer(model, M.make_balancer("pcgrad", on="z"), lr=1e-2, batch_size=8, device="cpu")
    before = trainer.evaluate(data())
    trainer.fit(data(), steps=30)
    after = trainer.evaluate(data())
    assert sum(after[n]["loss"] for n in TASKS) < sum(before[n]["loss"] for n in TASKS)


@pytest.mark.parametrize("groups,match", [
    ([["a", "b"], ["b", "c", "d"]], r"in two or more: \['b'\]"),
    ([["a", "b"], ["c"]], r"in none: \['d'\]"),
    ([["a", "b", "c", "d"], []], "at least one task"),
])
def test_groups_must_partition_the_tasks(groups, match):
    with pytest.raises(ValueError, match=match):
        build(groups)


def test_unknown_task_names_are_listed():
    with pytest.raises(KeyError, match="unknown task 'e'"):
        build([["a", "b", "c", "d", "e"]])


def test_fit_grouping_trains_the_branched_network_of_its_groups():
    from mtlkit.data.planted import planted_groups
    from mtlkit.relations import fit_grouping, one_per_task

    data, _ = planted_groups(300, (2, 1), dim=6, seed=0)
    train, test = data.split(200, 100)
    names = train.tasks.names
    assert one_per_task(names) == [("t1",), ("t2",), ("t3",)]
    kwargs = dict(widths=(8, 2), device="cpu")
    untrained = fit_grouping([("t1", "t2"), ("t3",)], train, test, steps=0, **kwargs)
    trained = fit_grouping([("t1", "t2"), ("t3",)], train, test, steps=100, **kwargs)
    assert trained.groups == (("t1", "t2"), ("t3",)) and set(trained.scores) == set(names)
    assert all(trained.scores[n]["loss"] < untrained.scores[n]["loss"] for n in names)
    singles = fit_grouping(one_per_task(names), train, test, steps=0, **kwargs)
    expected = sum(p.numel() for p in BranchedNetwork.mlp(train.tasks, 6, one_per_task(names), (8, 2)).parameters())
    assert singles.parameters == expected > trained.parameters
    with pytest.raises(ValueError, match="in none"):
        fit_grouping([("t1", "t2")], train, test, steps=1, **kwargs)
