"""The panel of notebook 01: ρ and split-depth sliders, Train / Stop / Reset, live test-loss curves.

Solid lines: the model that shares its first ``split`` layers; dashed lines: the
separate networks (single-task learning). One colour per task. Every evaluation is
a marked point: after Reset or a slider move a curve holds one evaluation, and a
line through one point draws nothing.
"""
from __future__ import annotations

import ipywidgets as W
import plotly.graph_objects as go

from ..metrics import relative_gain
from ..experiments.transfer import SharingComparison, TransferSetup
from .live import TrainStopReset
from .style import STEP_AXIS, task_color

MODELS = ("shared", "separate")


class TransferPanel(TrainStopReset):
    """Widgets that train :class:`mtlkit.experiments.transfer.SharingComparison` live.

    ``steps`` is how far one press of Train goes; the test loss is measured
    every ``eval_every`` steps.
    """

    def __init__(self, rho: float = 0.9, split: int = 2, steps: int = 1500, eval_every: int = 50, seed: int = 0,
                 setup: TransferSetup = TransferSetup(), device=None):
        self.steps, self.eval_every, self.seed, self.setup, self.device = steps, eval_every, seed, setup, device
        self.rho = W.FloatSlider(value=rho, min=-1.0, max=1.0, step=0.05, description="task corr. ρ",
                                 continuous_update=False)
        self.split = W.IntSlider(value=split, min=1, max=len(setup.widths), description="split depth",
                                 continuous_update=False)
        buttons = self._controls()
        self.figure = go.FigureWidget(layout=dict(
            height=360, xaxis_title=STEP_AXIS, yaxis_title="test MSE (log scale)", yaxis_type="log",
            legend_title="task · model", margin=dict(l=60, r=20, t=30, b=50)))
        self.rho.observe(lambda _: self.reset(), names="value")
        self.split.observe(lambda _: self.reset(), names="value")
        self.widget = W.VBox([W.HBox([self.rho, self.split]), buttons, self.status, self.figure])
        self.reset()

    # -- actions ----------------------------------------------------------
    def reset(self) -> None:
        """New data and fresh models for the current slider values; clear the plot."""
        self._restart()
        self.run = SharingComparison(self.rho.value, self.split.value, self.seed, self.setup, self.device)
        self.curves: dict[tuple[str, str], tuple[list, list]] = {}
        names = list(self.run.tasks)
        with self.figure.batch_update():
            self.figure.data = []
            for model in MODELS:
                for name in names:
                    self.curves[(model, name)] = ([], [])
                    colour = task_color(names, name)
                    self.figure.add_scatter(x=[], y=[], mode="lines+markers", name=f"{name} · {model}",
                                            line=dict(color=colour, dash="solid" if model == "shared" else "dash"),
                                            marker=dict(color=colour, size=5))
        self._measure()
        self._refresh()
        self._show_state("ready")

    @property
    def step_count(self) -> int:
        return self.run.step_count

    def advance(self) -> None:
        self.run.step()

    def _measure(self) -> None:
        scores = self.run.evaluate()
        for (model, name), (xs, ys) in self.curves.items():
            xs.append(self.run.step_count)
            ys.append(scores[model][name]["mse"])

    def _refresh(self) -> None:
        with self.figure.batch_update():
            for trace, (xs, ys) in zip(self.figure.data, self.curves.values()):
                trace.x, trace.y = list(xs), list(ys)
        gains = ", ".join(f"{n}: {g:+.1f}%" for n, g in self._last_gains().items())
        self.status.value = f"step {self.run.step_count} · test-MSE gain of sharing over separate: {gains}"

    def _last_gains(self) -> dict[str, float]:
        return {n: relative_gain(self.curves[("shared", n)][1][-1], self.curves[("separate", n)][1][-1],
                                 higher_is_better=False) for n in self.run.tasks}
