"""The live-training panel, driven from Python as a student would drive it with the mouse."""
import threading
import time

import numpy as np
import pytest
import torch

from mtlkit.data import correlated_regression
from mtlkit.models import HardSharing
from mtlkit.monitor import ConflictMonitor, diagnose, plane_basis
from mtlkit.train import Trainer
from mtlkit.widgets import LiveRunner, TrainingPanel
from mtlkit.widgets.panel import downsample

DATA = correlated_regression(256, 0.0, dim=8, seed=0)


def _live_threads():
    return [t for t in threading.enumerate() if t.name == "mtlkit-live"]


@pytest.fixture(autouse=True)
def no_thread_left_behind():
    yield
    assert not _live_threads(), "a training thread outlived its test"


def _model():
    return HardSharing.mlp(DATA.tasks, 8, (16, 8))


def _panel(**kwargs):
    kwargs.setdefault("grads_every", 1)
    return TrainingPanel(_model, DATA, batch_size=32, device="cpu", **kwargs)


def _wait_for(condition, timeout=30.0):
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("condition not reached")
        time.sleep(0.01)


def _xs(panel, fig="losses"):
    return [list(t.x) for t in panel.plots[fig]]


def test_step_button_runs_exactly_one_step_and_updates_every_plot():
    panel = _panel()
    assert panel.trainer.step_count == 0 and all(x == [] for x in _xs(panel))
    panel.step_button.click()
    assert panel.trainer.step_count == 1
    assert _xs(panel) == [[1], [1]] and _xs(panel, "weights") == [[1], [1]]
    before = list(panel.plots["losses"][0].y)
    panel.step_button.click()
    assert panel.trainer.step_count == 2 and _xs(panel) == [[1, 2], [1, 2]]
    assert list(panel.plots["losses"][0].y[:1]) == before
    assert len(panel.plots["conflict"][0].x) == 2          # cos(d, g_1) logged every step
    assert len(panel.plots["plane"][-1].x) == 2            # the update arrow is drawn
    assert "step 2" in panel.status.value


def test_displaying_the_panel_sends_every_figure_as_it_is_now(monkeypatch):
    # A FigureWidget inside a VBox is drawn from its widget state, which plotly refreshes only when the
    # figure itself is displayed: without a refresh, steps run before display would show as 0 traces.
    import IPython.display
    panel = _panel()
    panel.step(3)
    fig = panel.figure
    assert fig._widget_data == [], "plotly has not sent the traces yet"
    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    panel._ipython_display_()
    assert shown == [panel.widget]
    assert len(fig._widget_data) == len(fig.data) > 0
    sent = {trace["uid"]: trace for trace in fig._widget_data}
    assert list(sent[panel.plots["losses"][0].uid]["x"]) == [1, 2, 3]
    assert list(sent[panel.plots["conflict"][-1].uid]["x"]) == [1, 2, 3]


def test_the_panel_ships_plotly_once():
    # Every FigureWidget carries plotly's ~5 MB JavaScript bundle to the browser: the panel uses one,
    # with a subplot per plot, and every plot's traces live in it.
    import plotly.graph_objects as go

    def widgets(w):
        yield w
        for child in getattr(w, "children", ()):
            yield from widgets(child)
    panel = _panel()
    figures = [w for w in widgets(panel.widget) if isinstance(w, go.FigureWidget)]
    assert figures == [panel.figure]
    traces = [t for plot in panel.plots.values() for t in plot]
    assert len(traces) == len(panel.figure.data) and {id(t) for t in traces} == {id(t) for t in panel.figure.data}
    assert [panel.title(name) for name in ("losses", "cosine")] == ["training loss", "cos(g_i, g_j), last logged step"]


def test_play_then_pause_mid_run_stops_the_thread_and_the_steps():
    panel = _panel()
    panel.play_button.click()
    _wait_for(lambda: panel.trainer.step_count >= 5)
    assert panel.runner.running and len(_live_threads()) == 1
    panel.pause_button.click()
    stopped = panel.trainer.step_count
    assert not panel.runner.running and not _live_threads()
    time.sleep(0.2)
    assert panel.trainer.step_count == stopped
    assert len(panel.plots["losses"][0].x) == stopped  # the last refresh shows every step
    assert "paused" in panel.status.value


def test_play_with_a_step_budget_finishes_by_itself():
    panel = _panel(steps=30)
    panel.play()
    panel.wait(60)
    assert panel.trainer.step_count == 30 and panel.trainer.epoch == 3  # 256 / 32 = 8 steps an epoch
    panel.play(5)
    panel.wait(60)
    assert panel.trainer.step_count == 35 and "finished" in panel.status.value


def test_switching_the_balancer_mid_run_changes_the_weights_trace():
    panel = _panel(balancer="equal")
    panel.play()
    _wait_for(lambda: panel.trainer.step_count >= 5)
    panel.weight_sliders[0].value, panel.weight_sliders[1].value = 0.25, 1.5
    panel.balancer.value = "fixed"
    switched_by = panel.trainer.step_count
    _wait_for(lambda: panel.trainer.balancer.name == "fixed" and panel.trainer.step_count >= switched_by + 5)
    panel.pause()
    w = np.array(panel.plots["weights"][0].y, dtype=float)
    assert w[0] == 1.0 and w[-1] == 0.25
    assert np.array(panel.plots["weights"][1].y, dtype=float)[-1] == 1.5


def test_fixed_weight_sliders_are_shown_only_for_fixed_and_set_the_weights():
    panel = _panel(balancer="equal")
    assert panel.weights_box.layout.display == "none" and panel.weight_sliders[0].disabled
    panel.balancer.value = "fixed"
    assert panel.weights_box.layout.display is None and not panel.weight_sliders[0].disabled
    panel.weight_sliders[1].value = 0.4
    assert panel.trainer.balancer.fixed.tolist() == pytest.approx([1.0, 0.4])
    panel.step()
    assert panel.trainer.history["weights"][-1] == pytest.approx([1.0, 0.4])


def test_gradient_space_toggle_and_learning_rate_reach_the_trainer():
    panel = _panel(balancer="equal", methods=["equal", "fixed", "pcgrad"])
    assert panel.space.disabled
    panel.balancer.value = "pcgrad"
    assert not panel.space.disabled and panel.trainer.balancer.on == "params"
    panel.space.value = "z"
    assert panel.trainer.balancer.name == "pcgrad" and panel.trainer.balancer.on == "z"
    panel.step(2)
    assert panel.monitor.records[-1].space == "z"
    assert "w.r.t. z" in panel.title("plane")
    panel.lr.value = 0.01
    assert panel.trainer.lr == pytest.approx(0.01)


def test_reset_clears_the_plots_and_rebuilds_the_same_initial_model():
    panel = _panel()
    first = [p.detach().clone() for p in panel.trainer.model.parameters()]
    old_model = panel.trainer.model
    panel.step(5)
    assert any(len(x) == 5 for x in _xs(panel))
    panel.reset_button.click()
    assert panel.trainer.step_count == 0 and panel.trainer.model is not old_model
    assert all(x == [] for name in ("losses", "weights", "conflict", "plane") for x in _xs(panel, name))
    assert panel.monitor.records == []
    assert all(torch.equal(a, b) for a, b in zip(first, panel.trainer.model.parameters()))


def test_reset_while_running_stops_the_worker():
    panel = _panel()
    panel.play()
    _wait_for(lambda: panel.trainer.step_count >= 3)
    panel.reset()
    assert not panel.runner.running and panel.trainer.step_count == 0


def test_an_error_in_the_worker_shows_in_the_status_and_is_reraised():
    panel = _panel()
    panel.step()
    with torch.no_grad():
        next(panel.trainer.model.parameters()).fill_(float("nan"))
    panel.play()
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        panel.wait(30)
    assert "error" in panel.status.value and "non-finite loss" in panel.status.value
    assert not _live_threads()


def test_the_factory_may_return_a_trainer_and_must_return_something_known():
    panel = TrainingPanel(lambda: Trainer(_model(), lr=0.05, device="cpu"), DATA, balancer="mgda", device="cpu")
    panel.step()
    assert panel.trainer.balancer.name == "mgda" and panel.monitor.records == []  # every=5 by default
    with pytest.raises(TypeError, match="MultiTaskModel or a Trainer"):
        TrainingPanel(lambda: 3, DATA)
    with pytest.raises(KeyError, match="unknown balancer"):
        TrainingPanel(_model, DATA, methods=["equal", "nope"])


def test_plots_are_downsampled():
    panel = _panel(max_points=10)
    panel.step(40)
    xs = panel.plots["losses"][0].x
    assert len(xs) <= 10 and xs[0] == 1 and xs[-1] == 40
    assert downsample(5, 10).tolist() == [0, 1, 2, 3, 4]
    assert downsample(100, 7)[-1] == 99


def test_runner_applies_changes_between_steps_never_during_one():
    seen = []
    state = {"value": 0}

    def step():
        v = state["value"]
        time.sleep(0.002)
        seen.append(v == state["value"])  # the value never changes in the middle of a step
        return len(seen) < 200

    runner = LiveRunner(step, lambda: None)
    runner.play()
    for i in range(20):
        runner.between_steps(lambda i=i: state.update(value=i))
        time.sleep(0.003)
    runner.wait(30)
    assert all(seen) and state["value"] == 19
    runner.between_steps(lambda: state.update(value=-1))  # idle: applied at once
    assert state["value"] == -1


# -- the monitor behind the conflict plots ------------------------------------------------
def test_diagnose_on_known_gradients():
    G = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 1.0, 0.0]])
    d = torch.tensor([0.0, 1.0, 0.0])
    rec = diagnose(G, d, step=7)
    assert rec.conflict_fraction == 1.0 and rec.step == 7
    assert rec.cosine[0, 1] == pytest.approx(-2 ** -0.5)
    assert rec.update_cosine.tolist() == pytest.approx([0.0, 2 ** -0.5])
    assert rec.plane.flatten().tolist() == pytest.approx([1.0, 0.0, -1.0, 1.0])
    assert rec.update_plane.tolist() == pytest.approx([0.0, 1.0])
    B = plane_basis(torch.tensor([[1.0, 1.0, 0.0], [2.0, 2.0, 0.0]]))
    assert B[1].abs().sum() == 0 and B[0].norm() == pytest.approx(1.0)
    assert torch.equal(plane_basis(torch.randn(3, 2)), torch.eye(2))


def test_monitor_uses_the_probe_batch_for_weighting_methods():
    probe = DATA[torch.arange(32)]
    monitor = ConflictMonitor(every=2, probe=probe)
    trainer = Trainer(_model(), "equal", device="cpu", callbacks=[monitor])
    trainer.fit(DATA, steps=6)
    assert monitor.steps == [2, 4, 6]
    summary = monitor.summary()
    assert summary["logged_steps"] == 3 and -1 <= summary["min_update_cosine"] <= 1
    with pytest.raises(ValueError, match="every must be"):
        ConflictMonitor(every=0)
