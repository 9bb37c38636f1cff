"""The toy-landscape explorer of notebook 08: pick balancers and a start, press Run, compare their paths.

The landscape is the two-objective toy of the CAGrad and Nash-MTL papers
(:mod:`mtlkit.data.toy2d`), drawn by :func:`draw_landscape` as the average loss's
contours, the exact Pareto set (:func:`mtlkit.data.toy2d.toy_pareto_set`) and the
average's minimum. Each path is one :func:`mtlkit.pareto.toy_trajectory` run (Adam,
the toy's losses shifted to be positive, so loss-weighting methods that take
logarithms run too); a method that fails anyway is named, with its reason, under
the Run button instead of being drawn.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Mapping, Sequence

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from ..balancers import BALANCERS
from ..data.toy2d import CAGRAD_STARTS, SHIFT, STARTS, toy_grid, toy_pareto_set
from ..pareto import Trajectory, toy_trajectory
from .live import sync_figure_state
from .style import method_color

#: Balancers that cannot run without arguments the explorer has no control for.
NEEDS_ARGUMENTS = ("fixed",)


@lru_cache(maxsize=1)
def _landscape(n: int = 61) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid coordinates (n,), the average loss on the grid (n, n) and the Pareto set θ (101, 2)."""
    xs, _, F = toy_grid(-10.0, 10.0, n)
    return xs.numpy(), F.mean(-1).numpy(), toy_pareto_set(101)[0]


def draw_landscape(fig: go.Figure, row: int | None = None, col: int | None = None, legend: bool = True) -> None:
    """Add the toy's average-loss contours, its Pareto set and the average's minimum (a star) to ``fig``."""
    xs, avg, pareto = _landscape()
    fig.add_contour(x=xs, y=xs, z=avg, ncontours=25, colorscale="Greys", showscale=False,
                    contours_coloring="lines", hoverinfo="skip", name="average loss", row=row, col=col)
    fig.add_scatter(x=pareto[:, 0], y=pareto[:, 1], mode="lines", line=dict(color="#999", width=6),
                    name="Pareto set", showlegend=legend, row=row, col=col)
    middle = pareto[len(pareto) // 2]
    fig.add_scatter(x=[middle[0]], y=[middle[1]], mode="markers", marker=dict(symbol="star", size=12, color="black"),
                    name="min of the average", showlegend=False, row=row, col=col)


class ToyExplorer:
    """Methods (a multi-select), a start (a dropdown), Run, and the landscape with one path per method.

    ``methods`` lists the balancers offered (default: every registered one except
    :data:`NEEDS_ARGUMENTS`), ``picked`` those selected at first; ``starts`` the
    starting points offered (default: the Nash-MTL paper's five and the CAGrad
    paper's extra one). ``steps``, ``lr``, ``every``, ``stall`` and ``shift`` go to
    every :func:`~mtlkit.pareto.toy_trajectory` call, ``method_kwargs[name]`` to that
    method's constructor. :meth:`run` (the Run button) draws the picked methods' paths
    and keeps their :class:`~mtlkit.pareto.Trajectory` in ``trajectories``.
    """

    def __init__(self, methods: Sequence[str] | None = None, picked: Sequence[str] = ("mgda", "nash_mtl"),
                 starts: Sequence[tuple[float, float]] | None = None, start: tuple[float, float] = STARTS[3],
                 steps: int = 1500, lr: float = 5e-3, every: int = 20, stall: tuple[int, float] | None = (200, 0.01),
                 shift: float = SHIFT, method_kwargs: Mapping[str, Mapping] | None = None):
        methods = [m for m in BALANCERS if m not in NEEDS_ARGUMENTS] if methods is None else list(methods)
        unknown = [m for m in [*methods, *picked] if m not in BALANCERS]
        if unknown:
            raise KeyError(f"unknown balancer(s) {unknown}; known: {', '.join(BALANCERS)}")
        starts = list(dict.fromkeys(STARTS + CAGRAD_STARTS)) if starts is None else [tuple(s) for s in starts]
        self.run_kwargs = dict(steps=steps, lr=lr, every=every, stall=stall, shift=shift)
        self.method_kwargs = {k: dict(v) for k, v in (method_kwargs or {}).items()}
        self.pick = W.SelectMultiple(options=methods, value=tuple(picked), description="methods", rows=8)
        self.start = W.Dropdown(options=[(str(s), s) for s in starts], value=tuple(start), description="start")
        self.run_button = W.Button(description="Run", button_style="success", icon="play")
        self.note = W.HTML()
        self.figure = go.FigureWidget(layout=dict(
            height=460, width=560, xaxis_title="x₁", yaxis_title="x₂", xaxis_range=[-10, 10],
            yaxis_range=[-10, 10], legend_title="method", margin=dict(t=30)))
        draw_landscape(self.figure)
        self._fixed = len(self.figure.data)
        self.trajectories: dict[str, Trajectory] = {}
        self.run_button.on_click(lambda _: self.run())
        self.widget = W.VBox([W.HBox([self.pick, W.VBox([self.start, self.run_button, self.note])]), self.figure])

    @property
    def paths(self) -> tuple:
        """The drawn paths (one scatter trace per method that ran), after the landscape's traces."""
        return self.figure.data[self._fixed:]

    def run(self) -> dict[str, Trajectory]:
        """Run every picked method from the chosen start and redraw the paths; failures go to ``note``."""
        self.trajectories, failures = {}, []
        for m in self.pick.value:
            try:
                self.trajectories[m] = toy_trajectory(m, self.start.value, **self.run_kwargs,
                                                      **self.method_kwargs.get(m, {}))
            except (ValueError, FloatingPointError) as err:
                failures.append(f"<b>{m}</b>: {err}")
        self.note.value = "<br>".join(failures)
        with self.figure.batch_update():
            self.figure.data = self.figure.data[:self._fixed]
            for m, tr in self.trajectories.items():
                self.figure.add_scatter(x=tr.thetas[:, 0], y=tr.thetas[:, 1], mode="lines", name=m,
                                        line=dict(color=method_color(m), width=3))
        return self.trajectories

    def _ipython_display_(self) -> None:
        from IPython.display import display
        sync_figure_state([self.figure])  # paths drawn before display must show too
        display(self.widget)


__all__ = ["NEEDS_ARGUMENTS", "ToyExplorer", "draw_landscape"]
