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

from ..balancers import BALANCERS, Balancer, GradientBalancer, make_balancer
from ..config import seed_everything
from ..data.base import MultiTaskDataset
from ..models.base import MultiTaskModel
from ..monitor import ConflictMonitor
from ..train import Trainer
from .live import LiveRunner
from .style import LOSS_AXIS, STEP_AXIS, task_color

Factory = Callable[[], "MultiTaskModel | Trainer"]
FIGURES = ("losses", "weights", "conflict", "cosine", "plane")


def sync_figure_state(figures) -> None:
    """Make each FigureWidget's widget state (what a new front-end view is drawn from) its current figure.

    plotly refreshes that state only in a FigureWidget's own display hook
    (``_repr_mimebundle_``). A figure shown inside a VBox never gets that call, so
    traces added or data changed before the box is displayed would be missing from
    the view (it shows 0 traces); calling the hook here sends the figure as it is now.
    """
    for figure in figures:
        figure._repr_mimebundle_()


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
        names = self.task_names
        small = dict(height=300, margin=dict(l=60, r=20, t=40, b=50), legend_title="task")
        self.figures = {
            "losses": go.FigureWidget(layout=dict(small, title="training loss", xaxis_title=STEP_AXIS,
                                                  yaxis_title=LOSS_AXIS, yaxis_type="log")),
            "weights": go.FigureWidget(layout=dict(small, title="task weights w_i", xaxis_title=STEP_AXIS,
                                                   yaxis_title="weight")),
            "conflict": go.FigureWidget(layout=dict(small, title="does the update serve each task?",
                                                    xaxis_title=STEP_AXIS, yaxis_title="cosine / fraction",
                                                    yaxis_range=[-1.05, 1.05], legend_title="")),
            "cosine": go.FigureWidget(layout=dict(small, title="cos(g_i, g_j), last logged step",
                                                  xaxis_title="task j", yaxis_title="task i",
                                                  yaxis_autorange="reversed")),
            "plane": go.FigureWidget(layout=dict(small, title="gradients in the plane of g_1, g_2",
                                                 xaxis_title="along g_1 (units of max ||g_i||)",
                                                 yaxis_title="orthogonal part of g_2", legend_title="",
                                                 yaxis_scaleanchor="x")),
        }
        f = self.figures
        for n in names:
            color = task_color(names, n)
            f["losses"].add_scatter(x=[], y=[], mode="lines", name=n, line=dict(color=color))
            f["weights"].add_scatter(x=[], y=[], mode="lines", name=n, line=dict(color=color))
            f["conflict"].add_scatter(x=[], y=[], mode="lines", name=f"cos(d, g) · {n}", line=dict(color=color))
        f["conflict"].add_scatter(x=[], y=[], mode="lines", name="conflicting pairs (fraction)",
                                  line=dict(color="#000000", dash="dot"))
        f["cosine"].add_heatmap(z=[[0.0] * len(names)] * len(names), x=names, y=names, zmin=-1, zmax=1,
                                colorscale="RdBu", colorbar=dict(title="cos"))
        f["plane"].add_scatter(x=[], y=[], mode="lines", name="segment g_1 … g_2 (MGDA's choices)",
                               line=dict(color="#999999", dash="dot"))
        for n in names:
            f["plane"].add_scatter(x=[], y=[], mode="lines+markers", name=f"g · {n}",
                                   line=dict(color=task_color(names, n)),
                                   marker=dict(symbol="arrow", angleref="previous", size=12))
        f["plane"].add_scatter(x=[], y=[], mode="lines+markers", name="update d", line=dict(color="#000000", width=3),
                               marker=dict(symbol="arrow", angleref="previous", size=14))
        self.widget = W.VBox([
            W.HBox([self.balancer, self.space]), self.weights_box, self.lr,
            W.HBox([self.play_button, self.pause_button, self.step_button, self.reset_button]),
            self.status,
            W.HBox([f["losses"], f["weights"]]), W.HBox([f["conflict"], f["cosine"]]), f["plane"]])

    def _ipython_display_(self):
        from IPython.display import display
        sync_figure_state(self.figures.values())  # steps run before display must show too
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
        self.data = self.train_data.to(self.trainer.device)
        self._batches = iter(())
        self._epoch_totals, self._epoch_count = torch.zeros(len(self.task_names)), 0
        self._epoch_started = False
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
    def _next_batch(self):
        batch = next(self._batches, None)
        if batch is None:
            if self._epoch_started:
                self.trainer._end_epoch(self._epoch_totals / max(self._epoch_count, 1), self.val_data)
            self._batches = self.data.batches(self.batch_size, self.trainer.generator)
            self._epoch_totals, self._epoch_count = torch.zeros(len(self.task_names)), 0
            self._epoch_started = True
            batch = next(self._batches)
        return batch

    def _step(self) -> bool:
        x, y = self._next_batch()
        result = self.trainer.train_step(x, y)
        self._epoch_totals += result.losses * len(x)
        self._epoch_count += len(x)
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
        f = self.figures
        with f["losses"].batch_update(), f["weights"].batch_update():
            for t in range(T):
                f["losses"].data[t].x, f["losses"].data[t].y = steps, losses[:, t].tolist()
                f["weights"].data[t].x, f["weights"].data[t].y = steps, weights[:, t].tolist()
        with f["conflict"].batch_update():
            for t in range(T):
                f["conflict"].data[t].x = rsteps
                f["conflict"].data[t].y = [float(records[i].update_cosine[t]) for i in ridx]
            f["conflict"].data[T].x = rsteps
            f["conflict"].data[T].y = [records[i].conflict_fraction for i in ridx]
        self._draw_last_record(records[-1] if records else None)
        self._show_status()

    def _draw_last_record(self, record) -> None:
        f, T = self.figures, len(self.task_names)
        with f["cosine"].batch_update(), f["plane"].batch_update():
            if record is None:
                f["cosine"].data[0].z = [[0.0] * T] * T
                for trace in f["plane"].data:
                    trace.x, trace.y = [], []
                return
            f["cosine"].data[0].z = record.cosine.tolist()
            scale = float(record.norms.max()) or 1.0
            plane = (record.plane / scale).tolist()
            d = (record.update_plane / scale).tolist()
            hull = plane[:2] if T >= 2 else []
            f["plane"].data[0].x, f["plane"].data[0].y = [p[0] for p in hull], [p[1] for p in hull]
            for t in range(T):
                f["plane"].data[1 + t].x, f["plane"].data[1 + t].y = [0.0, plane[t][0]], [0.0, plane[t][1]]
            f["plane"].data[1 + T].x, f["plane"].data[1 + T].y = [0.0, d[0]], [0.0, d[1]]
            space = "z" if record.space == "z" else "θ"
            f["plane"].layout.title.text = f"gradients w.r.t. {space} in the plane of g_1, g_2 (step {record.step})"

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


__all__ = ["FIGURES", "TrainingPanel", "downsample", "sync_figure_state"]
