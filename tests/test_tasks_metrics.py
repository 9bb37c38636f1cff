import math

import pytest
import torch

from mtlkit.metrics import delta_m, per_task_delta, relative_gain
from mtlkit.tasks import TaskSet, classification, regression


@pytest.fixture
def tasks():
    return TaskSet([regression("depth"), classification("digit", 10)])


def test_unknown_task_lists_known_ones(tasks):
    with pytest.raises(KeyError, match=r"unknown task 'normals'; known tasks: depth, digit"):
        tasks["normals"]


def test_duplicate_and_empty_tasksets_are_rejected():
    with pytest.raises(ValueError, match="duplicate task name 'a'"):
        TaskSet([regression("a"), regression("a")])
    with pytest.raises(ValueError, match="at least one task"):
        TaskSet([])


def test_regression_shape_mismatch_names_task_and_both_shapes(tasks):
    with pytest.raises(ValueError, match=r"task 'depth': head output has shape \(8, 3\) but targets have shape \(8, 1\)"):
        tasks["depth"].loss(torch.zeros(8, 3), torch.zeros(8, 1))


def test_classification_shape_mismatch_names_expected_logits(tasks):
    with pytest.raises(ValueError, match=r"task 'digit'.*\(8, 5\).*\(8,\).*\(B, 10, \.\.\.\)"):
        tasks["digit"].loss(torch.zeros(8, 5), torch.zeros(8, dtype=torch.long))


def test_losses_in_task_order_and_missing_targets(tasks):
    out = {"depth": torch.ones(4, 1), "digit": torch.zeros(4, 10)}
    y = {"depth": torch.zeros(4, 1), "digit": torch.zeros(4, dtype=torch.long)}
    losses = tasks.losses(out, y)
    assert losses.shape == (2,)
    assert losses[0].item() == pytest.approx(1.0)
    assert losses[1].item() == pytest.approx(math.log(10))
    with pytest.raises(KeyError, match=r"missing \['digit'\]"):
        tasks.losses(out, {"depth": y["depth"]})


def test_metrics_directions(tasks):
    scores = tasks["digit"].evaluate(torch.eye(10)[[1, 2, 3, 4]], torch.tensor([1, 2, 0, 4]))
    assert scores == {"accuracy": 0.75}
    assert not tasks["depth"].primary_metric.higher_is_better


def test_delta_m_signs_follow_metric_direction():
    tasks = TaskSet([classification("a", 2), regression("b")])
    base = {"a": {"accuracy": 0.80}, "b": {"mse": 2.0, "mae": 1.0}}
    better = {"a": {"accuracy": 0.88}, "b": {"mse": 1.0, "mae": 1.0}}
    # a: +10 %, b: mse -50 % -> +50, mae 0 -> per-metric mean over 3 metrics
    assert delta_m(better, base, tasks) == pytest.approx((10 + 50 + 0) / 3)
    assert per_task_delta(better, base, tasks) == pytest.approx({"a": 10.0, "b": 25.0})
    assert delta_m(base, base, tasks) == 0.0
    assert relative_gain(1.0, 2.0, higher_is_better=False) == pytest.approx(50.0)


def test_delta_m_rejects_missing_and_zero_baselines():
    tasks = TaskSet([classification("a", 2)])
    with pytest.raises(KeyError, match="baselines lack metric 'accuracy' of task 'a'"):
        delta_m({"a": {"accuracy": 0.5}}, {"a": {}}, tasks)
    with pytest.raises(ValueError, match="non-zero baseline"):
        delta_m({"a": {"accuracy": 0.5}}, {"a": {"accuracy": 0.0}}, tasks)
