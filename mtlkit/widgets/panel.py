"""The live-training panel: pick a balancer, press Play, watch losses, weights and gradient conflict.

Like TensorFlow Playground: Play / Pause / Step / Reset, and every control
stays live while a model trains in a background thread (:class:`LiveRunner`).
Changes made while training (balancer, fixed weights, gradient space, learning
rate) are applied between two steps. Plots, refreshed a few times a second:

* per-task training loss and per-task weight against the step;
* cos(d, g_i) of the applied update d with each task gradient, and the fraction
  of conflicting task pairs (g_i · g_j < 0);
* the pairwise cosine matrix of the task gradients at the last logged step;
* the task gradients and the update d drawn in the plane of g_1 and g_2, so you
  can watch PCGrad remove the conflicting parts and MGDA pick the min-norm
  point of the segment between g_1 and g_2.

Gradient diagnostics come from :class:`mtlkit.monitor.ConflictMonitor`.
"""
from __future__ import annotations

import html
from typing import Callable, Mapping, Sequence

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..balancers import BALANCERS, Balancer, GradientBalancer, make_balancer
from ..config import seed_everything
from ..data.base import MultiTaskDataset
from ..models.base import MultiTaskModel
from ..monitor import ConflictMonitor
from ..train import Trainer
from .live import LiveRunner, sync_figure_state
from .style import LOSS_AXIS, STEP_AXIS, task_color

Factory = Callable[[], "MultiTaskModel | Trainer"]
#: The panel's subplots, by name; ``panel.plots[name]`` holds the traces of one.
PLOTS = ("losses", "weights", "conflict", "cosine", "plane")
PLOT_TITLES = {"losses": "training loss", "weights": "task weights w_i", "conflict": "does the update serve each task?",
               "cosine": "cos(g_i, g_j), last logged step", "plane": "gradients in the plane of g_1, g_2"}
AXIS_TITLES = {"losses": (STEP_AXIS, LOSS_AXIS), "weights": (STEP_AXIS, "weight"),
               "conflict": (STEP_AXIS, "cosine / fraction"), "cosine": ("task j", "task i"),
               "plane": ("along g_1 (units of max ||g_i||)", "orthogonal part of g_2")}


def downsample(n: int, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` of ``n`` evenly spread points, always keeping the last one."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


class TrainingPanel:
    """A live-training panel for any multi-task model and dataset.

    ``factory()`` builds a fresh :class:`MultiTaskModel` (or a ready
    :class:`Trainer`) and is called again by Reset, after seeding with ``seed``,
    so every Reset starts from the same initial model. ``methods`` limits the
    balancer dropdown (default: every registered balancer); ``balancer_kwargs``
    gives extra constructor arguments per method name. One press of Play runs
    ``steps`` steps (None: until Pause). Gradient diagnostics are logged every
    ``grads_every`` steps; plots show at most ``max_points`` points per curve.
    """

    def __init__(self, factory: Factory, train_data: MultiTaskDataset, val_data: MultiTaskDataset | None = None,
                 balancer: str = "equal", lr: float = 1e-3, batch_size: int = 64, steps: int | None = None,
                 grads_every: int = 5, methods: Sequence[str] | None = None,
                 balancer_kwargs: Mapping[str, dict] | None = None, seed: int = 0, device=None,
                 fps: float = 4.0, max_points: int = 300, probe_size: int = 128, optimizer: str = "adam"):
        self.factory, self.train_data, self.val_data = factory, train_data, val_data
        self.batch_size, self.steps, self.seed, self.device = batch_size, steps, seed, device
        self.max_points, self.optimizer_name = max_points, optimizer
        self.balancer_kwargs = {k: dict(v) for k, v in (balancer_kwargs or {}).items()}
        self.task_names = list(train_data.tasks)
        methods = list(methods) if methods is not None else list(BALANCERS)
        unknown = [m for m in methods if m not in BALANCERS]
        if unknown:
            raise KeyError(f"unknown balancer(s) {unknown}; known: {', '.join(BALANCERS)}")
        if balancer not in methods:
            raise ValueError(f"balancer {balancer!r} is not among the panel's methods {methods}")
        self.probe = train_data[torch.arange(min(probe_size, len(train_data)))]
        self.monitor = ConflictMonitor(every=grads_every, probe=self.probe)
        self._build_controls(methods, balancer, lr)
        self._build_figures()
        self.runner = LiveRunner(self._step, self._refresh, fps=fps, on_state=self._show_state)
        self._target: int | None = None
        self._state = "ready"
        self.trainer: Trainer
        self.reset()

    # -- layout -------------------------------------------------------------------
    def _build_controls(self, methods: list[str], balancer: str, lr: float) -> None:
        self.balancer = W.Dropdown(options=methods, value=balancer, description="balancer")
        self.space = W.ToggleButtons(options=["params", "z"], value="params", description="gradients",
                                     tooltips=["w.r.t. the shared parameters θ",
                                               "w.r.t. the shared representation z (MGDA-UB trick)"])
        self.lr = W.FloatLogSlider(value=lr, base=10, min=-5, max=0, step=0.1, description="learning rate",
                                   readout_format=".1e", continuous_update=False)
        self.weight_sliders = [W.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.05, description=f"w · {n}",
                                             continuous_update=False) for n in self.task_names]
        self.play_button = W.Button(description="Play", button_style="success", icon="play")
        self.pause_button = W.Button(description="Pause", icon="pause")
        self.step_button = W.Button(description="Step", icon="step-forward")
        self.reset_button = W.Button(description="Reset", icon="refresh")
        self.status = W.HTML()
        self.play_button.on_click(lambda _: self.play())
        self.pause_button.on_click(lambda _: self.pause())
        self.step_button.on_click(lambda _: self.step())
        self.reset_button.on_click(lambda _: self.reset())
        self.balancer.observe(lambda _: self._change_balancer(), names="value")
        self.space.observe(lambda _: self._change_balancer(), names="value")
        self.lr.observe(lambda _: self._change_lr(), names="value")
        for slider in self.weight_sliders:
            slider.observe(lambda _: self._change_weights(), names="value")
        self.weights_box = W.HBox(self.weight_sliders)
        self._sync_control_visibility()

    def _build_figures(self) -> None:
        """One FigureWidget with five subplots (each FigureWidget ships plotly's ~5 MB JavaScript bundle).

        Every curve of a task shares the task's colour and legend entry, so clicking a
        task in the legend hides it in every subplot.
        """
        names = self.task_names
        fig = go.FigureWidget(make_subplots(
            rows=2, cols=3, specs=[[{}, {}, {}], [{}, {"colspan": 2}, None]],
            subplot_titles=[PLOT_TITLES[name] for name in PLOTS], horizontal_spacing=0.09, vertical_spacing=0.2))
        fig.update_layout(height=640, width=1000, margin=dict(l=60, r=20, t=90, b=50),
                          legend=dict(orientation="h", x=0, y=1.06, yanchor="bottom"))
        self.figure = fig
        self._cell = {name: cell for name, cell in zip(PLOTS, ((1, 1), (1, 2), (1, 3), (2, 1), (2, 2)))}
        self._traces: dict[str, list[int]] = {name: [] for name in PLOTS}
        for name, (x_title, y_title) in AXIS_TITLES.items():
            row, col = self._cell[name]
            fig.update_xaxes(title_text=x_title, row=row, col=col)
            fig.update_yaxes(title_text=y_title, row=row, col=col)
        fig.update_yaxes(type="log", **self._at("losses"))
        fig.update_yaxes(range=[-1.05, 1.05], **self._at("conflict"))
        fig.update_yaxes(autorange="reversed", **self._at("cosine"))
        plane = fig.get_subplot(*self._cell["plane"])
        fig.update_yaxes(scaleanchor=plane.yaxis.anchor, **self._at("plane"))  # equal units on both axes

        def task(n: str, plot: str, **kwargs):
            color = task_color(names, n)
            self._add(plot, go.Scatter(x=[], y=[], legendgroup=n, line=dict(color=color),
                                       showlegend=plot == "losses", **kwargs))

        curve = dict(mode="lines+markers", marker=dict(size=4))  # markers: a run of one step is a visible point
        for n in names:
            task(n, "losses", name=n, **curve)
            task(n, "weights", name=f"w · {n}", **curve)
            task(n, "conflict", name=f"cos(d, g) · {n}", **curve)
        self._add("conflict", go.Scatter(x=[], y=[], name="conflicting pairs (fraction)",
                                         line=dict(color="#000000", dash="dot"), **curve))
        self._add("cosine", go.Heatmap(z=[[0.0] * len(names)] * len(names), x=names, y=names, zmin=-1, zmax=1,
                                       colorscale="RdBu", showscale=False, texttemplate="%{z:.2f}",
                                       name="cos(g_i, g_j)"))  # each cell shows its value: no colour bar
        self._add("plane", go.Scatter(x=[], y=[], mode="lines", name="segment g_1 … g_2 (MGDA's choices)",
                                      line=dict(color="#999999", dash="dot")))
        for n in names:
            task(n, "plane", mode="lines+markers", name=f"g · {n}",
                 marker=dict(symbol="arrow", angleref="previous", size=12))
        self._add("plane", go.Scatter(x=[], y=[], mode="lines+markers", name="update d",
                                      line=dict(color="#000000", width=3),
                                      marker=dict(symbol="arrow", angleref="previous", size=14)))
        self.widget = W.VBox([
            W.HBox([self.balancer, self.space]), self.weights_box, self.lr,
            W.HBox([self.play_button, self.pause_button, self.step_button, self.reset_button]),
            self.status, fig])

    def _at(self, plot: str) -> dict:
        row, col = self._cell[plot]
        return dict(row=row, col=col)

    def _add(self, plot: str, trace) -> None:
        self._traces[plot].append(len(self.figure.data))
        self.figure.add_trace(trace, **self._at(plot))

    @property
    def plots(self) -> dict[str, tuple]:
        """The traces of each subplot by name (:data:`PLOTS`), in the order they were added."""
        return {name: tuple(self.figure.data[i] for i in idx) for name, idx in self._traces.items()}

    def title(self, plot: str) -> str:
        """The title shown above subplot ``plot``."""
        return self.figure.layout.annotations[PLOTS.index(plot)].text

    def _ipython_display_(self):
        from IPython.display import display
        sync_figure_state([self.figure])  # steps run before display must show too
        display(self.widget)

    # -- actions --------------------------------------------------------------------
    def play(self, steps: int | None = None) -> None:
        """Train in the background: ``steps`` more steps (default: the panel's ``steps``; None = until Pause)."""
        steps = self.steps if steps is None else steps
        self._target = None if steps is None else self.trainer.step_count + steps
        self.runner.play()

    def pause(self) -> None:
        """Stop after the current step; the worker thread is gone when this returns."""
        self.runner.pause()

    def step(self, n: int = 1) -> None:
        """Exactly ``n`` training steps now (pauses first), then redraw."""
        self._target = None
        self.runner.step(n)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the background run ends; re-raise an error it hit."""
        self.runner.wait(timeout)

    def reset(self) -> None:
        """Pause, build a fresh model (same seed, so the same initial weights), clear the plots."""
        self.runner.pause()
        self.runner.error = None
        seed_everything(self.seed)
        built = self.factory()
        if isinstance(built, Trainer):
            self.trainer = built
            self.trainer.set_balancer(self._make_balancer())
        elif isinstance(built, MultiTaskModel):
            self.trainer = Trainer(built, self._make_balancer(), lr=self.lr.value, batch_size=self.batch_size,
                                   device=self.device, seed=self.seed, optimizer=self.optimizer_name)
        else:
            raise TypeError(f"the panel's factory must return a MultiTaskModel or a Trainer, "
                            f"got {type(built).__name__}")
        self.trainer.lr = self.lr.value
        self.monitor.clear()
        self.trainer.callbacks.append(self.monitor)
        self._steps = self.trainer.run(self.train_data, self.val_data)   # the Trainer's one loop, a step at a time
        self._state = "ready"
        self._refresh()

    # -- changes from the controls (applied between steps) ---------------------------
    def _make_balancer(self) -> Balancer:
        name = self.balancer.value
        kwargs = dict(self.balancer_kwargs.get(name, {}))
        if name == "fixed":
            kwargs.setdefault("weights", [s.value for s in self.weight_sliders])
        if issubclass(BALANCERS[name], GradientBalancer):
            kwargs.setdefault("on", self.space.value)
        return make_balancer(name, **kwargs)

    def _sync_control_visibility(self) -> None:
        fixed = self.balancer.value == "fixed"
        self.weights_box.layout.display = None if fixed else "none"
        for s in self.weight_sliders:
            s.disabled = not fixed
        self.space.disabled = not issubclass(BALANCERS[self.balancer.value], GradientBalancer)

    def _change_balancer(self) -> None:
        self._sync_control_visibility()
        balancer = self._make_balancer()
        self.runner.between_steps(lambda: self.trainer.set_balancer(balancer))

    def _change_weights(self) -> None:
        weights = [s.value for s in self.weight_sliders]

        def apply():
            if hasattr(self.trainer.balancer, "set_weights"):
                self.trainer.balancer.set_weights(weights)
        self.runner.between_steps(apply)

    def _change_lr(self) -> None:
        lr = self.lr.value
        self.runner.between_steps(lambda: setattr(self.trainer, "lr", lr))

    # -- worker ---------------------------------------------------------------------
    def _step(self) -> bool:
        next(self._steps)
        return self._target is None or self.trainer.step_count < self._target

    # -- drawing --------------------------------------------------------------------
    def _refresh(self) -> None:
        history = self.trainer.history
        n = len(history["loss"])
        idx = downsample(n, self.max_points)
        steps = (idx + 1).tolist()
        T = len(self.task_names)
        losses = np.asarray(history["loss"], dtype=float).reshape(n, T)[idx]
        weights = np.array([w if w is not None else [np.nan] * T for w in history["weights"]],
                           dtype=float).reshape(n, T)[idx]
        records = self.monitor.records
        ridx = downsample(len(records), self.max_points)
        rsteps = [records[i].step for i in ridx]
        p = self.plots
        with self.figure.batch_update():  # one message to the front end per refresh
            for t in range(T):
                p["losses"][t].x, p["losses"][t].y = steps, losses[:, t].tolist()
                p["weights"][t].x, p["weights"][t].y = steps, weights[:, t].tolist()
                p["conflict"][t].x = rsteps
                p["conflict"][t].y = [float(records[i].update_cosine[t]) for i in ridx]
            p["conflict"][T].x = rsteps
            p["conflict"][T].y = [records[i].conflict_fraction for i in ridx]
            self._draw_last_record(records[-1] if records else None)
        self._show_status()

    def _draw_last_record(self, record) -> None:
        p, T = self.plots, len(self.task_names)
        title = self.figure.layout.annotations[PLOTS.index("plane")]
        if record is None:
            p["cosine"][0].z = [[0.0] * T] * T
            for trace in p["plane"]:
                trace.x, trace.y = [], []
            title.text = PLOT_TITLES["plane"]
            return
        p["cosine"][0].z = record.cosine.tolist()
        scale = float(record.norms.max()) or 1.0
        plane = (record.plane / scale).tolist()
        d = (record.update_plane / scale).tolist()
        hull = plane[:2] if T >= 2 else []
        p["plane"][0].x, p["plane"][0].y = [q[0] for q in hull], [q[1] for q in hull]
        for t in range(T):
            p["plane"][1 + t].x, p["plane"][1 + t].y = [0.0, plane[t][0]], [0.0, plane[t][1]]
        p["plane"][1 + T].x, p["plane"][1 + T].y = [0.0, d[0]], [0.0, d[1]]
        space = "z" if record.space == "z" else "θ"
        title.text = f"gradients w.r.t. {space} in the plane of g_1, g_2 (step {record.step})"

    def _show_state(self, state: str) -> None:
        self._state = state
        self._show_status()

    def _show_status(self) -> None:
        tr = self.trainer
        text = f"{self.balancer.value} · step {tr.step_count} · epoch {tr.epoch} · {self._state}"
        if tr.history["loss"]:
            last = tr.history["loss"][-1]
            text += " · loss " + ", ".join(f"{n}: {v:.3g}" for n, v in zip(self.task_names, last))
        if self.runner.error is not None:
            err = self.runner.error
            text += f"<br><b style='color:#b00'>error: {html.escape(type(err).__name__)}: {html.escape(str(err))}</b>"
        self.status.value = text


__all__ = ["PLOTS", "TrainingPanel", "downsample", "sync_figure_state"]
