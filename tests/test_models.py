import pytest
import torch

from mtlkit.models import MODELS, HardSharing, MTLOutput
from mtlkit.tasks import TaskSet, classification, regression

TASKS = TaskSet([regression("a"), regression("b"), classification("c", 3)])


@pytest.mark.parametrize("split", [0, 1, 2, 3])
def test_split_depth_decides_what_is_shared(split):
    model = HardSharing.mlp(TASKS, in_dim=5, widths=(8, 8, 4), split=split)
    out = model(torch.randn(7, 5))
    assert isinstance(out, MTLOutput)
    assert {n: o.shape for n, o in out.outputs.items()} == {"a": (7, 1), "b": (7, 1), "c": (7, 3)}
    assert len(model.trunk) == split and all(len(t) == 3 - split for t in model.towers.values())
    shared = {id(p) for p in model.shared_parameters()}
    assert shared == {id(p) for p in model.trunk.parameters()}
    # every parameter is either shared or belongs to exactly one task
    per_task = [{id(p) for p in model.task_parameters(n)} for n in TASKS]
    assert sum(len(s) for s in per_task) + len(shared) == len(list(model.parameters()))
    # a task's loss reaches its own parameters and the shared ones, never another task's
    out.outputs["a"].sum().backward()
    touched = {id(p) for p in model.parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert touched <= shared | per_task[0] and per_task[0] <= touched
    assert not touched & (per_task[1] | per_task[2])


def test_full_sharing_z_is_last_trunk_output_and_split_zero_has_no_trunk():
    full = HardSharing.mlp(TASKS, 5, (8, 4))
    out = full(torch.randn(3, 5))
    assert out.z.shape == (3, 4) and out.z.requires_grad
    assert full.last_shared_parameters()[0] is full.trunk[-1][0].weight
    sep = HardSharing.mlp(TASKS, 5, (8, 4), split=0)
    assert sep.shared_parameters() == [] and sep.last_shared_parameters() == []


def test_bad_split_and_bad_input_shape_are_explained():
    with pytest.raises(ValueError, match=r"between 0 \(separate networks\) and 2 \(all blocks shared\), got 3"):
        HardSharing.mlp(TASKS, 5, (8, 4), split=3)
    model = HardSharing.mlp(TASKS, 5, (8, 4))
    with pytest.raises(ValueError, match=r"expects inputs of shape \(B, 5\), got \(2, 6\)"):
        model(torch.randn(2, 6))


def test_lenet_on_multimnist_images():
    tasks = TaskSet([classification("left", 10), classification("right", 10)])
    model = HardSharing.lenet(tasks)
    out = model(torch.randn(4, 1, 36, 36))
    assert out.outputs["left"].shape == (4, 10) and out.z.shape == (4, 50)


def test_registry_builds_by_name_and_lists_known_names():
    assert isinstance(MODELS["hard"].build(TASKS, (5,)), HardSharing)
    with pytest.raises(KeyError, match="unknown architecture 'nope'; known: .*hard"):
        MODELS["nope"]
