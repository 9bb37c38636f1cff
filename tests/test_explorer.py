"""Notebook 08's toy explorer, driven from Python as a student drives it with the mouse."""
import numpy as np
import plotly.graph_objects as go
import pytest

from mtlkit import BALANCERS
from mtlkit.data.toy2d import CAGRAD_STARTS
from mtlkit.pareto import toy_trajectory
from mtlkit.widgets import ToyExplorer, draw_landscape
from mtlkit.widgets.explorer import NEEDS_ARGUMENTS

RUN = dict(steps=60, lr=5e-3, every=10)


def _end(trace):
    return np.array([trace.x[-1], trace.y[-1]])


def test_landscape_is_drawn_and_nothing_runs_before_run():
    explorer = ToyExplorer(**RUN)
    names = [t.name for t in explorer.figure.data]
    assert names == ["average loss", "Pareto set", "min of the average"]
    assert explorer.paths == () and explorer.note.value == ""
    assert explorer.figure.layout.xaxis.title.text == "x₁" and explorer.figure.layout.yaxis.title.text == "x₂"
    assert list(explorer.pick.options) == [m for m in BALANCERS if m not in NEEDS_ARGUMENTS]
    assert explorer.pick.value == ("mgda", "nash_mtl") and explorer.start.value == (-7.5, -0.5)
    assert explorer.figure in explorer.widget.children


def test_run_draws_one_path_per_picked_method_from_the_chosen_start():
    explorer = ToyExplorer(**RUN)
    explorer.pick.value, explorer.start.value = ("pcgrad", "famo", "gls", "uncertainty"), CAGRAD_STARTS[1]
    explorer.run_button.click()
    assert [t.name for t in explorer.paths] == ["pcgrad", "famo", "gls", "uncertainty"]
    assert explorer.note.value == "", "on the shifted toy the methods that take logs of the losses run too"
    for trace in explorer.paths:
        assert (trace.x[0], trace.y[0]) == CAGRAD_STARTS[1]
        expected = toy_trajectory(trace.name, CAGRAD_STARTS[1], stall=(200, 0.01), **RUN)
        np.testing.assert_allclose(_end(trace), expected.end)
        assert len(trace.x) == len(expected.thetas)
    assert set(explorer.trajectories) == {"pcgrad", "famo", "gls", "uncertainty"}


def test_changing_the_start_or_the_methods_then_run_changes_the_figure():
    explorer = ToyExplorer(**RUN)
    explorer.run_button.click()
    before = [(t.name, tuple(t.x)) for t in explorer.paths]
    explorer.start.value = CAGRAD_STARTS[2]
    explorer.run_button.click()
    after = [(t.name, tuple(t.x)) for t in explorer.paths]
    assert [n for n, _ in after] == ["mgda", "nash_mtl"] and after != before
    assert all(x[0] == CAGRAD_STARTS[2][0] for _, x in after)
    explorer.pick.value = ("equal",)
    explorer.run_button.click()
    assert [t.name for t in explorer.paths] == ["equal"]
    assert len(explorer.figure.data) == 4, "old paths are removed, the landscape stays"


def test_a_failing_method_is_named_with_its_reason_and_the_others_are_drawn():
    explorer = ToyExplorer(shift=0.0, **RUN)  # the papers' unshifted losses go below zero
    explorer.pick.value = ("famo", "mgda")
    explorer.run()
    assert [t.name for t in explorer.paths] == ["mgda"]
    assert "<b>famo</b>" in explorer.note.value and "shift" in explorer.note.value


def test_method_arguments_reach_the_method():
    explorer = ToyExplorer(method_kwargs={"cagrad": {"c": 0.0}}, **RUN)
    explorer.pick.value = ("cagrad",)
    explorer.run()
    c0 = toy_trajectory("cagrad", explorer.start.value, c=0.0, stall=(200, 0.01), **RUN)
    np.testing.assert_allclose(_end(explorer.paths[0]), c0.end)
    assert not np.allclose(c0.end, toy_trajectory("cagrad", explorer.start.value, **RUN).end)


def test_bad_names_are_refused():
    with pytest.raises(KeyError, match="unknown balancer"):
        ToyExplorer(methods=["mgda", "not_a_method"])
    with pytest.raises(KeyError, match="unknown balancer"):
        ToyExplorer(picked=("nope",))


def test_draw_landscape_into_subplots():
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=1, cols=2)
    draw_landscape(fig, 1, 1)
    draw_landscape(fig, 1, 2, legend=False)
    assert len(fig.data) == 6 and fig.data[1].showlegend and not fig.data[4].showlegend
    assert {t.xaxis for t in fig.data} == {"x", "x2"}
    assert isinstance(fig, go.Figure)
