"""The panel of notebook 02: pick an architecture from ``MODELS``, train it live, watch what it learns to share.

Left plot: each task's test MSE while training. Right plot: the architecture's
own sharing numbers over the steps (:func:`mtlkit.experiments.architectures.internals`:
cross-stitch α, sluice β, gate usage, AdaShare's policy, split depths, the
soft-sharing penalty).
"""
from __future__ import annotations

import inspect

import ipywidgets as W
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..models import MODELS
from ..experiments.architectures import build, internals, regression_split
from ..train import Trainer
from ..experiments.transfer import TransferSetup
from .live import TrainStopReset
from .style import STEP_AXIS, task_color


def vector_architectures() -> list[str]:
    """Registered architectures that take vector inputs (``in_dim``)."""
    return [n for n in MODELS if MODELS[n].inputs == "vector"]


class ArchitecturePanel(TrainStopReset):
    """Architecture dropdown, ρ and split-depth sliders, Train / Stop / Reset, two live plots."""

    def __init__(self, name: str = "cross_stitch", rho: float = 0.0, split: int = 2, steps: int = 600,
                 eval_every: int = 25, seed: int = 0, setup: TransferSetup = TransferSetup(), device=None):
        self.steps, self.eval_every, self.seed, self.setup, self.device = steps, eval_every, seed, setup, device
        self.architecture = W.Dropdown(options=vector_architectures(), value=name, description="architecture")
        self.rho = W.FloatSlider(value=rho, min=-1.0, max=1.0, step=0.05, description="task corr. ρ",
                                 continuous_update=False)
        self.split = W.IntSlider(value=split, min=0, max=len(setup.widths), description="split depth",
                                 continuous_update=False)
        buttons = self._controls()
        # One FigureWidget with two subplots: each FigureWidget ships plotly's ~5 MB JavaScript bundle.
        self.figure = go.FigureWidget(make_subplots(
            1, 2, subplot_titles=["test MSE per task", "what the architecture learns to share"]))
        self.figure.update_layout(height=360, width=1000, margin=dict(l=60, r=20, t=40, b=50))
        self.figure.update_xaxes(title_text=STEP_AXIS)
        self.figure.update_yaxes(title_text="test MSE", row=1, col=1)
        self.figure.update_yaxes(title_text="value", row=1, col=2)
        for control in (self.architecture, self.rho, self.split):
            control.observe(lambda _: self.reset(), names="value")
        self.widget = W.VBox([W.HBox([self.architecture, self.rho, self.split]), buttons, self.status, self.figure])
        self.reset()

    @property
    def plots(self) -> dict[str, tuple]:
        """The traces of each subplot: ``"mse"`` (test MSE per task) and ``"inside"`` (sharing numbers)."""
        return {"mse": tuple(t for t in self.figure.data if t.xaxis in (None, "x")),
                "inside": tuple(t for t in self.figure.data if t.xaxis == "x2")}

    # -- actions ----------------------------------------------------------
    def reset(self) -> None:
        """New data and a fresh model for the current choices; clear both plots."""
        self._restart()
        name = self.architecture.value
        params = inspect.signature(MODELS[name].factory).parameters   # which optional knobs it has
        self.split.disabled = "split" not in params
        kwargs = {k: v for k, v in (("widths", self.setup.widths), ("split", self.split.value)) if k in params}
        self.train_data, self.test_data = regression_split(self.rho.value, self.seed, self.setup)
        self.trainer = Trainer(build(name, self.train_data, self.seed, **kwargs), lr=self.setup.lr,
                               batch_size=self.setup.batch_size, seed=self.seed, device=self.device)
        self._steps = self.trainer.run(self.train_data)   # the Trainer's one loop, a step at a time
        self.steps_seen: list[int] = []
        self.mse: dict[str, list[float]] = {n: [] for n in self.train_data.tasks}
        self.inside: dict[str, list[float]] = {}
        self._measure()
        self._refresh()
        self._show_state("ready")

    @property
    def step_count(self) -> int:
        return self.trainer.step_count

    def advance(self) -> None:
        next(self._steps)

    def _measure(self) -> None:
        scores = self.trainer.evaluate(self.test_data)
        self.steps_seen.append(self.trainer.step_count)
        for n, ys in self.mse.items():
            ys.append(scores[n]["mse"])
        for key, value in internals(self.trainer.model).items():
            self.inside.setdefault(key, []).append(value)

    def _refresh(self) -> None:
        names = list(self.mse)
        with self.figure.batch_update():
            self.figure.data = []
            for n, ys in self.mse.items():
                self.figure.add_scatter(x=list(self.steps_seen), y=list(ys), mode="lines+markers", name=n,
                                        marker_size=4,
                                        line=dict(color=task_color(names, n)), row=1, col=1)
            for key, ys in self.inside.items():
                self.figure.add_scatter(x=self.steps_seen[-len(ys):], y=list(ys), mode="lines+markers", name=key,
                                        marker_size=4,
                                        row=1, col=2)
        last = ", ".join(f"{n}: {ys[-1]:.3f}" for n, ys in self.mse.items())
        self.status.value = f"{self.architecture.value} · step {self.trainer.step_count} · test MSE {last}"
