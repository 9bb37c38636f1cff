"""A viewer for dense predictions: pick an architecture and a test image, see truth and prediction per task.

Row 1 shows the input and the true segmentation, depth and normals; row 2 what
the chosen model predicts. Segmentation classes use one colour each, depth a
shared colour scale (truth and prediction comparable), normals are drawn as
RGB with (n + 1) / 2 per channel.
"""
from __future__ import annotations

from typing import Mapping

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import Tensor

from .live import sync_figure_state

CLASS_COLORS = ("#bbbbbb", "#D55E00", "#009E73", "#0072B2")  # ground, sphere, box, pyramid
PANELS = ("input", "segmentation", "depth", "normals")


def _rgb(t: Tensor) -> list:
    """(3, H, W) in [0, 1] -> (H, W, 3) nested lists of 0-255 values for go.Image."""
    return (t.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).tolist()


def _seg_scale(num_classes: int) -> list:
    scale = []
    for c in range(num_classes):
        scale += [[c / num_classes, CLASS_COLORS[c % len(CLASS_COLORS)]],
                  [(c + 1) / num_classes, CLASS_COLORS[c % len(CLASS_COLORS)]]]
    return scale


class DenseViewer:
    """``predictions``: architecture -> task -> (N, ...) outputs on ``x`` (N, 3, H, W) with ``targets``."""

    def __init__(self, x: Tensor, targets: Mapping[str, Tensor], predictions: Mapping[str, Mapping[str, Tensor]],
                 class_names: tuple[str, ...] = ("ground", "sphere", "box", "pyramid")):
        if not predictions:
            raise ValueError("DenseViewer needs predictions of at least one architecture")
        self.x, self.targets, self.predictions = x.cpu(), {k: v.cpu() for k, v in targets.items()}, predictions
        self.class_names = class_names
        depth = self.targets["depth"]
        self.depth_range = (float(depth.min()), float(depth.max()))
        self.arch = widgets.Dropdown(options=list(predictions), description="architecture")
        self.sample = widgets.IntSlider(0, 0, len(x) - 1, description="test image")
        self.figure = go.FigureWidget(make_subplots(rows=2, cols=4, subplot_titles=[
            *(f"true {p}" if p != "input" else p for p in PANELS), "", *(f"predicted {p}" for p in PANELS[1:])],
            horizontal_spacing=0.03, vertical_spacing=0.08))
        self.figure.update_layout(height=420, width=760, margin=dict(l=10, r=10, t=40, b=10), showlegend=False)
        self.figure.update_xaxes(visible=False)
        self.figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
        self._draw()
        self.arch.observe(lambda _: self._draw(), "value")
        self.sample.observe(lambda _: self._draw(), "value")

    def _traces(self, seg: Tensor, depth: Tensor, normals: Tensor) -> list:
        c = len(self.class_names)
        lo, hi = self.depth_range
        names = [[self.class_names[int(v)] for v in row] for row in seg.tolist()]
        return [go.Heatmap(z=seg.tolist(), zmin=-0.5, zmax=c - 0.5, colorscale=_seg_scale(c), showscale=False,
                           text=names, hovertemplate="%{text}<extra></extra>"),
                go.Heatmap(z=depth[0].tolist(), zmin=lo, zmax=hi, colorscale="Viridis", showscale=False,
                           hovertemplate="depth %{z:.2f}<extra></extra>"),
                go.Image(z=_rgb((normals / normals.norm(dim=0, keepdim=True).clamp_min(1e-8) + 1) / 2))]

    def _draw(self) -> None:
        i, pred = self.sample.value, self.predictions[self.arch.value]
        truth = self._traces(self.targets["segmentation"][i], self.targets["depth"][i], self.targets["normals"][i])
        guess = self._traces(pred["segmentation"][i].argmax(0).cpu(), pred["depth"][i].cpu(), pred["normals"][i].cpu())
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.add_trace(go.Image(z=_rgb(self.x[i])), row=1, col=1)
            for col, (t, g) in enumerate(zip(truth, guess), start=2):
                self.figure.add_trace(t, row=1, col=col)
                self.figure.add_trace(g, row=2, col=col)

    def widget(self) -> widgets.VBox:
        return widgets.VBox([widgets.HBox([self.arch, self.sample]), self.figure])

    def _ipython_display_(self) -> None:
        from IPython.display import display
        sync_figure_state([self.figure])  # the sample drawn before display must show too
        display(self.widget())


__all__ = ["DenseViewer"]
