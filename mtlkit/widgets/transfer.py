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
from .live import LiveRunner
from .style import STEP_AXIS, task_color

MODELS = ("shared", "separate")


class TransferPanel:
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
        self.train_button = W.Button(description="Train", button_style="success", icon="play")
        self.stop_button = W.Button(description="Stop", icon="pause")
        self.reset_button = W.Button(description="Reset", icon="refresh")
        self.status = W.HTML()
        self.figure = go.FigureWidget(layout=dict(
            height=360, xaxis_title=STEP_AXIS, yaxis_title="test MSE (log scale)", yaxis_type="log",
            legend_title="task · model", margin=dict(l=60, r=20, t=30, b=50)))
        self.train_button.on_click(lambda _: self.train())
        self.stop_button.on_click(lambda _: self.stop())
        self.reset_button.on_click(lambda _: self.reset())
        self.rho.observe(lambda _: self.reset(), names="value")
        self.split.observe(lambda _: self.reset(), names="value")
        self.widget = W.VBox([W.HBox([self.rho, self.split]),
                              W.HBox([self.train_button, self.stop_button, self.reset_button]),
                              self.status, self.figure])
        self.reset()

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)

    # -- actions ----------------------------------------------------------
    def reset(self) -> None:
        """New data and fresh models for the current slider values; clear the plot."""
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.pause()
        self.run = SharingComparison(self.rho.value, self.split.value, self.seed, self.setup, self.device)
        self.curves: dict[tuple[str, str], tuple[list, list]] = {}
        self.runner = LiveRunner(self._step, self._refresh, on_state=self._show_state)
        self._target = 0
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

    def train(self) -> None:
        """Train in the background until ``steps`` more steps are done (or Stop)."""
        self._target = self.run.step_count + self.steps
        self.runner.play()

    def stop(self) -> None:
        self.runner.pause()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the background training ends (for scripts and tests)."""
        self.runner.wait(timeout)

    # -- worker -------------------------------------------------------------
    def _step(self) -> bool:
        self.run.step()
        if self.run.step_count % self.eval_every == 0:
            self._measure()
        return self.run.step_count < self._target

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

    def _show_state(self, state: str) -> None:
        if state.startswith("error"):
            self.status.value = f"<b style='color:#b00'>{state}</b>"
