import threading

import pytest
import torch

from mtlkit.experiments.transfer import (SharingComparison, TransferSetup, transfer_gains,
                                        transfer_sweep)
from mtlkit.models import HardSharing
from mtlkit.widgets import LiveRunner
from mtlkit.widgets.transfer import TransferPanel

SMALL = TransferSetup(n_train=200, n_test=200, dim=8, widths=(16, 4))


def _no_live_threads():
    return not [t for t in threading.enumerate() if t.name == "mtlkit-live"]


def test_both_models_see_the_same_batches_and_start_equal_where_equal():
    run = SharingComparison(0.5, 2, seed=0, setup=SMALL, device="cpu")
    first = run.step()
    # same initial heads/towers are not guaranteed, but the first batch is the same for both:
    gens = [t.generator.get_state() for t in run.trainers.values()]
    assert torch.equal(gens[0], gens[1])
    assert set(first) == {"shared", "separate"} and first["shared"].shape == (2,)
    with pytest.raises(ValueError, match="split must be between 1 and 2"):
        SharingComparison(0.5, 0, setup=SMALL)


def test_gains_are_relative_mse_improvements():
    run = SharingComparison(0.9, 2, seed=1, setup=SMALL, device="cpu")
    run.run(20)
    scores, gains = run.evaluate(), run.gains()
    for name in run.tasks:
        sep, sh = scores["separate"][name]["mse"], scores["shared"][name]["mse"]
        assert gains[name] == pytest.approx((sep - sh) / sep * 100)


def test_seeded_comparisons_reproduce():
    a, b = (SharingComparison(0.5, 1, seed=3, setup=SMALL, device="cpu") for _ in range(2))
    a.run(15)
    b.run(15)
    assert a.gains() == b.gains()


def test_sweep_keys_follow_rhos():
    out = transfer_sweep([1.0, 0.0], split=2, steps=5, setup=SMALL, device="cpu")
    assert list(out) == [1.0, 0.0] and all(isinstance(v, float) for v in out.values())


def test_gains_per_seed_and_their_mean():
    per_seed = transfer_gains([1.0, 0.0], split=2, steps=5, seeds=(0, 1), setup=SMALL, device="cpu")
    assert list(per_seed) == [1.0, 0.0] and all(len(g) == 2 for g in per_seed.values())
    mean = transfer_sweep([1.0, 0.0], split=2, steps=5, seeds=(0, 1), setup=SMALL, device="cpu")
    assert mean == pytest.approx({rho: sum(g) / 2 for rho, g in per_seed.items()})


def test_default_setup_builds_the_registered_hard_sharing_mlp():
    """Notebooks 02-09 train on TransferSetup(): its model is HardSharing.mlp, weight for weight."""
    setup = TransferSetup()
    train, _ = setup.data(0.5, seed=0)
    for split in (0, 1, 2):
        torch.manual_seed(0)
        ours = setup.model(train.tasks, split)
        torch.manual_seed(0)
        registered = HardSharing.mlp(train.tasks, setup.dim, setup.widths, split=split)
        assert [k for k in ours.state_dict()] == [k for k in registered.state_dict()]
        assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), registered.state_dict().values()))


def test_linear_bottleneck_has_no_relu_after_the_last_layer():
    setup = TransferSetup(dim=8, widths=(16, 1), linear_bottleneck=True)
    train, _ = setup.data(0.0, seed=0)
    model = setup.model(train.tasks, split=2)
    assert isinstance(model.trunk[-1], torch.nn.Linear) and isinstance(model.trunk[0][-1], torch.nn.ReLU)
    z = model(train.x).z
    assert z.shape == (len(train), 1) and (z < 0).any() and (z > 0).any()
    separate = setup.model(train.tasks, split=0)
    assert len(separate.trunk) == 0 and all(isinstance(t[-1], torch.nn.Linear) for t in separate.towers.values())


def test_scale_and_number_of_sines_shape_the_labels():
    linear = TransferSetup(n_train=4000, n_test=10, noise=0.0, scale=2.0, num_sines=0)
    train, _ = linear.data(1.0, seed=0)
    assert train.targets["t1"].std().item() == pytest.approx(2.0, rel=0.05)
    torch.testing.assert_close(train.targets["t1"], train.targets["t2"])  # rho = 1, no noise: one function


def test_panel_train_grows_the_plot_stop_and_reset():
    panel = TransferPanel(steps=60, eval_every=10, setup=SMALL, device="cpu")
    assert [len(t.x) for t in panel.figure.data] == [1, 1, 1, 1]
    panel.train_button.click()
    panel.wait(120)
    assert panel.run.step_count == 60
    assert all(len(t.x) == 7 for t in panel.figure.data)
    assert all(t.x[-1] == 60 for t in panel.figure.data)
    assert "step 60" in panel.status.value and "t1:" in panel.status.value
    panel.train_button.click()
    panel.stop_button.click()
    stopped = panel.run.step_count
    assert 60 <= stopped <= 120 and not panel.runner.running and _no_live_threads()
    panel.rho.value = 0.0  # a new ρ means new data and fresh models
    assert panel.run.rho == 0.0 and panel.run.step_count == 0
    assert all(len(t.x) == 1 for t in panel.figure.data)
    # one evaluation per curve: a line of one point draws nothing, so every point needs a marker
    assert all("markers" in t.mode.split("+") and "lines" in t.mode.split("+") for t in panel.figure.data)
    before = panel.figure.data[0].y[0]
    panel.split.value = 1
    assert panel.run.split == 1 and panel.figure.data[0].y[0] != before
    panel.reset_button.click()
    assert panel.run.step_count == 0 and _no_live_threads()


def test_panel_legend_names_tasks_and_models_with_one_colour_per_task():
    panel = TransferPanel(setup=SMALL, device="cpu")
    names = [t.name for t in panel.figure.data]
    assert names == ["t1 · shared", "t2 · shared", "t1 · separate", "t2 · separate"]
    colours = [t.line.color for t in panel.figure.data]
    assert colours[0] == colours[2] != colours[1] == colours[3]
    assert [t.marker.color for t in panel.figure.data] == colours


def test_runner_keeps_and_reraises_worker_errors():
    calls = []

    def step():
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom in step 3")
        return True

    states = []
    runner = LiveRunner(step, lambda: None, on_state=states.append)
    runner.play()
    with pytest.raises(RuntimeError, match="boom in step 3"):
        runner.wait(10)
    assert states[-1] == "error: RuntimeError: boom in step 3" and len(calls) == 3
    assert _no_live_threads()


def test_runner_step_runs_exactly_n_steps_in_the_caller():
    count = []
    refreshed = []
    runner = LiveRunner(lambda: count.append(1), lambda: refreshed.append(1))
    runner.step(3)
    assert len(count) == 3 and len(refreshed) == 1 and runner.steps_done == 3
    with pytest.raises(ValueError, match="fps must be positive"):
        LiveRunner(lambda: None, lambda: None, fps=0)
