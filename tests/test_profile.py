import pytest
import torch
from torch import nn

from mtlkit.models import MODELS, Architecture, HardSharing
from mtlkit.profile import (Setting, count_parameters, default_settings, forward_flops, profile_model,
                            profile_registry, time_forward)
from mtlkit.tasks import TaskSet, regression


def test_parameter_count_is_exact():
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Conv2d(3, 4, 3))
    assert count_parameters(model) == (5 * 7 + 7) + (3 * 4 * 9 + 4)
    model[0].weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 7 + 3 * 4 * 9 + 4
    tied = nn.Sequential(model[0], model[0])  # a shared tensor counts once
    assert count_parameters(tied) == 5 * 7 + 7


@pytest.mark.parametrize("batch, d_in, d_out", [(1, 3, 2), (8, 16, 5), (32, 10, 10)])
def test_linear_flops_are_2_in_out_batch(batch, d_in, d_out):
    assert forward_flops(nn.Linear(d_in, d_out), torch.randn(batch, d_in)) == 2 * d_in * d_out * batch


def test_conv_flops_and_mlp_model_flops():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    assert forward_flops(conv, torch.randn(1, 2, 5, 5)) == 2 * (2 * 9) * 3 * 25
    tasks = TaskSet([regression("a"), regression("b")])
    model = HardSharing.mlp(tasks, in_dim=4, widths=(6, 3))
    assert forward_flops(model, torch.randn(2, 4)) == 2 * 2 * (4 * 6 + 6 * 3 + 3 * 1 + 3 * 1)


def test_timing_and_profile_of_one_model():
    model = nn.Linear(4, 2)
    assert time_forward(model, torch.randn(3, 4), repeats=3) > 0
    with pytest.raises(ValueError, match="need repeats >= 1"):
        time_forward(model, torch.randn(3, 4), repeats=0)
    p = profile_model(model, torch.randn(6, 4), name="lin", repeats=2, gpu=False)
    assert (p.name, p.params, p.flops, p.batch, p.gpu_ms) == ("lin", 10, 16, 6, None)
    assert p.row()["MFLOPs / example"] == pytest.approx(16e-6)
    assert model.training  # profiling leaves the train/eval mode as it was


def test_profile_registry_finds_a_setting_for_every_registered_model():
    profiles, skipped = profile_registry(MODELS, default_settings(batch=2), repeats=1, gpu=False,
                                         names=["hard", "hard_cnn", "dense_hard", "padnet"])
    by_name = {p.name: p for p in profiles}
    assert skipped == {}
    assert by_name["hard"].setting.startswith("vector") and by_name["hard_cnn"].setting.startswith("image")
    assert by_name["padnet"].setting.startswith("dense") and by_name["padnet"].flops > by_name["dense_hard"].flops


def test_profile_registry_reports_models_that_fit_no_setting():
    class Broken(nn.Module):
        def __init__(self, tasks):
            super().__init__()

        def forward(self, x):
            raise RuntimeError("always fails")
    setting = Setting("vec", "vector", TaskSet([regression("a")]), torch.randn(2, 3), targets={"a": torch.zeros(2, 1)})
    registry = {"broken": Architecture(lambda tasks, in_dim: Broken(tasks), "vector"),
                "an_image_model": Architecture(Broken, "image")}
    profiles, skipped = profile_registry(registry, [setting], repeats=1, gpu=False)
    assert profiles == [] and "vec: RuntimeError: always fails" in skipped["broken"]
    assert skipped["an_image_model"] == "no setting with image inputs"


@pytest.mark.cuda
def test_gpu_time_is_reported_on_cuda():
    p = profile_model(nn.Linear(4, 2), torch.randn(3, 4), repeats=2)
    assert p.gpu_ms is not None and p.gpu_ms > 0
