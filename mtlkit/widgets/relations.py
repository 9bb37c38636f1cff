"""The panel of notebook 10: pick an affinity source and a budget of networks, see the grouping and the branched net.

The panel only reads and asks: affinities are measured beforehand (:mod:`mtlkit.relations`);
the groups are chosen by :func:`mtlkit.relations.select_groups` (partitions only, as a
branched network needs them); ``train`` (optional, from the notebook) trains a grouping
and returns its Δm%, shown when **Train grouping** is pressed.

A source is an :class:`~mtlkit.relations.Affinity` (TAG, gradient cosine, Task2Vec, ...)
or anything with an ``affinity()`` method (Standley's
:class:`~mtlkit.relations.GroupRuns`, Taskonomy's :class:`~mtlkit.relations.TransferMatrix`);
its ``values()``, when it has one, scores the groups (Standley: measured and estimated
gains), otherwise the affinity's mean-affinity values do.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import ipywidgets as W
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..relations import Affinity, BudgetError, Grouping, select_groups
from ..relations.grouping import SEARCHES, ValueFn
from .live import sync_figure_state
from .style import task_color

#: train(groups as tuples of task names) -> Δm% of the branched network of those groups.
TrainFn = Callable[[list[tuple[str, ...]]], float]


def affinity_heatmaps(affinities: Sequence[Affinity], height: int = 330) -> go.Figure:
    """One heatmap per affinity matrix, row = source task i, column = target task j."""
    fig = make_subplots(rows=1, cols=len(affinities), subplot_titles=[a.method for a in affinities],
                        horizontal_spacing=0.04)
    for c, a in enumerate(affinities, start=1):
        fig.add_trace(_heatmap(a), 1, c)
        fig.update_xaxes(title_text="target task j", row=1, col=c)
        fig.update_yaxes(autorange="reversed", row=1, col=c, title_text="source task i" if c == 1 else None)
    fig.update_layout(height=height, margin=dict(l=60, r=20, t=40, b=50))
    return fig


def _heatmap(a: Affinity) -> go.Heatmap:
    names = list(a.tasks)
    return go.Heatmap(z=a.matrix.tolist(), x=names, y=names, colorscale="RdBu", zmid=0, showscale=False,
                      hovertemplate="%{y} → %{x}: %{z:.3g}<extra>" + a.method + "</extra>")


def network_figure(grouping: Grouping, names: Sequence[str], figure: go.FigureWidget | None = None
                   ) -> go.FigureWidget:
    """The branched network of a grouping: input → one trunk per group → the heads it serves."""
    part = grouping.partition()
    fig = figure if figure is not None else go.FigureWidget(layout=dict(
        height=300, width=460, xaxis=dict(visible=False, range=[-0.3, 2.5]), yaxis=dict(visible=False),
        showlegend=False, margin=dict(l=10, r=10, t=40, b=10)))
    T = len(names)
    task_y = {j: T - 1 - r for r, j in enumerate(j for g in part for j in g)}
    trunk_y = [sum(task_y[j] for j in g) / len(g) for g in part]
    traces = [go.Scatter(x=[0, 1, None] * len(part), y=[y for t in trunk_y for y in ((T - 1) / 2, t, None)],
                         mode="lines", line=dict(color="#999999"), hoverinfo="skip", name="trunks")]
    for k, g in enumerate(part):
        for j in g:
            color = task_color(names, names[j])
            traces.append(go.Scatter(x=[1, 2], y=[trunk_y[k], task_y[j]], mode="lines+markers+text",
                                     line=dict(color=color), marker=dict(size=[0, 14], color=color),
                                     text=["", names[j]], textposition="middle right", hoverinfo="skip",
                                     name=names[j]))
    traces.append(go.Scatter(x=[0] + [1] * len(part), y=[(T - 1) / 2] + trunk_y, mode="markers+text",
                             marker=dict(size=22, symbol="square", color="#444444"),
                             text=["input"] + [f"trunk {k + 1}" for k in range(len(part))],
                             textposition="top center", hoverinfo="skip", name="network"))
    with fig.batch_update():
        fig.data = []
        fig.add_traces(traces)
        fig.layout.title = f"{len(part)} trunk(s), {T} heads; value {grouping.score:.3g}"
    return fig


def _resolve(name: str, source: Any) -> tuple[Affinity, ValueFn]:
    """(the affinity to draw, the value function to group by) of one panel source."""
    affinity = source if isinstance(source, Affinity) else getattr(source, "affinity", lambda: None)()
    if not isinstance(affinity, Affinity):
        raise TypeError(f"source {name!r} must be an Affinity or have an affinity() method returning one, "
                        f"got {type(source).__name__}")
    values = source.values() if hasattr(source, "values") else affinity.values()
    return affinity, values


def _key(groups: Sequence[Sequence[str]]) -> tuple[tuple[str, ...], ...]:
    """A grouping as a dictionary key: the same groups in any order give the same key."""
    return tuple(sorted(tuple(g) for g in groups))


class GroupingPanel:
    """Dropdowns for the affinity source and the search, a budget slider, the grouping and its network.

    ``sources`` maps a name to a source (module docstring), all over the same tasks;
    ``labels`` are the planted groups, when known, for the adjusted Rand index;
    ``train(groups of names) -> Δm%`` is optional (without it the Train button is disabled);
    ``trained`` lists groupings already trained (groups of names -> Δm%), shown without retraining.
    """

    def __init__(self, sources: Mapping[str, Any], labels: Sequence[int] | None = None,
                 train: TrainFn | None = None, budget: int | None = None, search: str = "branch_and_bound",
                 trained: Mapping[Sequence[Sequence[str]], float] | None = None):
        if not sources:
            raise ValueError("GroupingPanel needs at least one affinity source")
        self.sources = {name: _resolve(name, s) for name, s in sources.items()}
        self.names = list(next(iter(self.sources.values()))[0].tasks)
        for name, (affinity, _) in self.sources.items():
            if list(affinity.tasks) != self.names:
                raise ValueError(f"source {name!r} covers tasks {list(affinity.tasks)}, expected {self.names}")
        if labels is not None and len(labels) != len(self.names):
            raise ValueError(f"labels must give one group per task ({len(self.names)}), got {len(labels)}")
        self.labels, self.train_fn = labels, train
        T = len(self.names)
        budget = budget if budget is not None else (len(set(labels)) if labels is not None else min(2, T))
        self.source = W.Dropdown(options=list(self.sources), description="affinity")
        self.search = W.Dropdown(options=list(SEARCHES), value=search, description="search")
        self.budget = W.IntSlider(value=budget, min=1, max=T, description="networks ≤", continuous_update=False)
        self.train_button = W.Button(description="Train grouping", icon="play", button_style="success",
                                     disabled=train is None, layout=W.Layout(width="auto"))
        self.text, self.results = W.HTML(), W.HTML()
        self.heatmap = go.FigureWidget(layout=dict(
            height=300, width=480, xaxis_title="target task j", yaxis=dict(title="source task i", autorange="reversed"),
            margin=dict(l=60, r=20, t=40, b=50)))
        self.figure: go.FigureWidget | None = None
        self.grouping: Grouping | None = None
        self.delta_m = {_key(groups): float(dm) for groups, dm in (trained or {}).items()}
        self.update()
        for control in (self.source, self.search, self.budget):
            control.observe(lambda _: self.update(), names="value")
        self.train_button.on_click(lambda _: self.train())
        self.widget = W.VBox([W.HBox([self.source, self.search, self.budget, self.train_button]), self.text,
                              W.HBox([self.heatmap, self.figure]), self.results])

    def _ipython_display_(self):
        from IPython.display import display
        sync_figure_state([self.heatmap, self.figure])  # traces drawn before display must show too
        display(self.widget)

    @property
    def groups(self) -> list[tuple[str, ...]]:
        """The current grouping as tuples of task names, one per network."""
        return self.grouping.named(self.names)

    def update(self) -> None:
        """Choose the grouping for the current source, search and budget; redraw both figures."""
        affinity, values = self.sources[self.source.value]
        with self.heatmap.batch_update():
            self.heatmap.data = []
            self.heatmap.add_trace(_heatmap(affinity))
            self.heatmap.layout.title = f"{affinity.method}: {affinity.runs} training run(s), {affinity.seconds:.1f} s"
        try:
            grouping = select_groups(values, len(self.names), self.budget.value, self.search.value, disjoint=True)
        except BudgetError as error:  # e.g. exhaustive search over too many families: keep the last grouping
            if self.grouping is None:
                raise
            self._write(f"{self.search.value} search refused: {error}")
            return
        self.grouping = grouping
        self.figure = network_figure(self.grouping, self.names, self.figure)
        self._write()

    def ari(self) -> float | None:
        """Adjusted Rand index of the current grouping against the planted ``labels`` (None without labels)."""
        if self.labels is None:
            return None
        from sklearn.metrics import adjusted_rand_score
        return float(adjusted_rand_score(self.labels, self.grouping.labels))

    def _write(self, note: str = "") -> None:
        parts = ["<b>groups</b>: " + " | ".join("{" + ", ".join(g) + "}" for g in self.groups)]
        ari = self.ari()
        if ari is not None:
            parts.append(f"<b>ARI vs planted</b>: {ari:.2f}")
        dm = self.delta_m.get(_key(self.groups))
        if dm is not None:
            parts.append(f"<b>Δm</b>: {dm:+.1f} %")
        if note:
            parts.append(f"<i>{note}</i>")
        self.text.value = " &nbsp; ".join(parts)
        rows = "".join(f"<tr><td>{' | '.join('{' + ', '.join(g) + '}' for g in key)}</td>"
                       f"<td style='text-align:right'>{dm:+.1f}</td></tr>" for key, dm in self.delta_m.items())
        self.results.value = ("<table><tr><th>trained grouping</th><th>Δm %</th></tr>" + rows + "</table>"
                              if rows else "")

    def train(self) -> float:
        """Train the current grouping (through ``train``), once per grouping; show and return its Δm%."""
        if self.train_fn is None:
            raise RuntimeError("this panel was built without a train function, so it cannot train groupings")
        key = _key(self.groups)
        if key not in self.delta_m:
            self._write("training…")
            self.delta_m[key] = float(self.train_fn(list(key)))
        self._write()
        return self.delta_m[key]


__all__ = ["GroupingPanel", "TrainFn", "affinity_heatmaps", "network_figure"]
