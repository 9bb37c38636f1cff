"""The grouping panel of notebook 10, driven from Python as a student would drive it with the mouse."""
import pytest
import torch

from mtlkit.relations import Affinity, TransferMatrix, train_groups
from mtlkit.widgets.relations import GroupingPanel, affinity_heatmaps

NAMES = ("a", "b", "c", "d", "e")
# Z[i, j] = affinity of i onto j: blocks {a, b, c} and {d, e}
BLOCKS = torch.tensor([[0.0, 0.8, 0.7, -0.3, -0.2], [0.9, 0.0, 0.6, -0.3, -0.3], [0.7, 0.6, 0.0, -0.2, -0.1],
                       [-0.3, -0.2, -0.4, 0.0, 0.5], [-0.2, -0.3, -0.1, 0.6, 0.0]])
# the same blocks with tasks renamed: {a, c, d} and {b, e}
OTHER = BLOCKS[[0, 3, 1, 2, 4]][:, [0, 3, 1, 2, 4]].clone()
LABELS = [0, 0, 0, 1, 1]


def source(matrix, method="toy", runs=1, seconds=0.5):
    return Affinity(method, NAMES, matrix, runs, seconds)


def panel(**kwargs):
    sources = kwargs.pop("sources", {"blocks": source(BLOCKS, "tag"), "other": source(OTHER, "cosine", 0, 0.1)})
    return GroupingPanel(sources, **kwargs)


def z(trace):
    return [list(row) for row in trace.z]


def trunks(p):
    """The trunk labels drawn in the network figure."""
    return [t for t in p.figure.data[-1].text if t.startswith("trunk")]


def heads_per_trunk(p):
    """Which task heads hang from which trunk, read from the figure's head traces."""
    ys = list(p.figure.data[-1].y)[1:]
    out = {}
    for trace in p.figure.data[1:-1]:
        out.setdefault(ys.index(trace.y[0]), []).append(trace.text[1])
    return sorted(tuple(v) for v in out.values())


def test_shows_the_grouping_of_the_first_source_with_its_network_and_heatmap():
    p = panel(labels=LABELS)
    assert p.groups == [("a", "b", "c"), ("d", "e")]
    assert trunks(p) == ["trunk 1", "trunk 2"] and heads_per_trunk(p) == [("a", "b", "c"), ("d", "e")]
    assert "{a, b, c} | {d, e}" in p.text.value and "ARI vs planted</b>: 1.00" in p.text.value
    assert z(p.heatmap.data[0]) == BLOCKS.tolist()
    assert "tag: 1 training run(s)" in p.heatmap.layout.title.text
    assert p.heatmap.layout.xaxis.title.text == "target task j"


def test_switching_the_source_regroups_and_redraws():
    p = panel(labels=LABELS)
    p.source.value = "other"
    assert p.groups == [("a", "c", "d"), ("b", "e")] and heads_per_trunk(p) == [("a", "c", "d"), ("b", "e")]
    assert z(p.heatmap.data[0]) == OTHER.tolist()
    assert "cosine: 0 training run(s)" in p.heatmap.layout.title.text
    assert p.ari() < 0.5 and f"ARI vs planted</b>: {p.ari():.2f}" in p.text.value


def test_the_budget_bounds_the_number_of_networks_and_groups_stay_a_partition():
    p = panel()
    p.budget.value = 1
    assert p.groups == [NAMES] and trunks(p) == ["trunk 1"]
    for k in range(1, len(NAMES) + 1):
        p.budget.value = k
        part = p.groups
        assert len(part) <= k and sorted(n for g in part for n in g) == list(NAMES)
        assert len(trunks(p)) == len(part)
    assert p.budget.max == len(NAMES)


def test_every_search_can_be_chosen():
    p = panel()
    for search in ("exhaustive", "greedy", "branch_and_bound"):
        p.search.value = search
        assert p.groups == [("a", "b", "c"), ("d", "e")], search


def test_a_refused_search_keeps_the_last_grouping_and_says_why():
    names = tuple(f"t{j}" for j in range(8))
    Z = torch.randn(8, 8, generator=torch.Generator().manual_seed(0))
    p = GroupingPanel({"big": Affinity("tag", names, Z, 1, 0.0)}, budget=4)
    before = p.groups
    p.search.value = "exhaustive"
    assert p.groups == before and "exhaustive search refused" in p.text.value and "max_families" in p.text.value


def test_train_button_trains_the_shown_grouping_once_and_shows_its_delta_m():
    calls = []

    def train(groups):
        calls.append(groups)
        return 12.5 if len(groups) == 2 else -3.0
    p = panel(train=train)
    assert not p.train_button.disabled and p.results.value == ""
    p.train_button.click()
    assert calls == [[("a", "b", "c"), ("d", "e")]]
    assert "Δm</b>: +12.5 %" in p.text.value and "+12.5" in p.results.value
    p.train_button.click()
    assert len(calls) == 1  # the same grouping is not trained twice
    p.budget.value = 1
    assert "Δm" not in p.text.value  # this grouping was never trained
    assert p.train() == -3.0 and calls[-1] == [NAMES]
    assert p.results.value.count("<tr>") == 3  # header and two trained groupings
    p.budget.value = 2
    assert "Δm</b>: +12.5 %" in p.text.value


def test_groupings_trained_beforehand_are_shown_without_training():
    calls = []
    p = panel(train=lambda groups: calls.append(groups) or 0.0,
              trained={(("d", "e"), ("a", "b", "c")): 7.0, (NAMES,): -20.0})
    assert "Δm</b>: +7.0 %" in p.text.value and p.results.value.count("<tr>") == 3
    assert p.train() == 7.0 and calls == []


def test_without_a_train_function_the_button_is_disabled():
    p = panel()
    assert p.train_button.disabled
    with pytest.raises(RuntimeError, match="without a train function"):
        p.train()


def test_standley_runs_group_by_their_gains_and_transfer_matrices_by_their_affinity():
    def fit(names):  # a task gains 0.2 per partner of its own parity, loses 0.3 per other partner
        idx = [NAMES.index(n) for n in names]
        return {n: {"loss": 1.0 - sum(0.2 if (i - j) % 2 == 0 else -0.3 for i in idx if i != j)}
                for n, j in zip(names, idx)}
    runs = train_groups(fit, NAMES)
    raw = 1.0 + 0.5 * (1 - BLOCKS.clamp(0, 1))  # a good source for its own block: low transfer loss
    transfer = TransferMatrix(NAMES, raw, runs=5, seconds=1.0)
    p = panel(sources={"standley": runs, "transfer": transfer}, budget=2)
    assert p.groups == [("a", "c", "e"), ("b", "d")]
    assert "standley: 15 training run(s)" in p.heatmap.layout.title.text
    p.source.value = "transfer"
    assert p.groups == [("a", "b", "c"), ("d", "e")]


def test_bad_sources_are_named():
    with pytest.raises(ValueError, match="at least one affinity source"):
        GroupingPanel({})
    with pytest.raises(TypeError, match="source 'raw' must be an Affinity"):
        GroupingPanel({"raw": BLOCKS})
    wrong = Affinity("tag", ("a", "b"), torch.zeros(2, 2), 1, 0.0)
    with pytest.raises(ValueError, match=r"source 'small' covers tasks \['a', 'b'\]"):
        GroupingPanel({"blocks": source(BLOCKS), "small": wrong})
    with pytest.raises(ValueError, match="one group per task"):
        panel(labels=[0, 1])


def test_affinity_heatmaps_draw_one_matrix_per_method():
    fig = affinity_heatmaps([source(BLOCKS, "tag"), source(OTHER, "cosine")])
    assert [z(t) for t in fig.data] == [BLOCKS.tolist(), OTHER.tolist()]
    assert [a.text for a in fig.layout.annotations] == ["tag", "cosine"]
    assert fig.layout.xaxis.title.text == "target task j" and fig.layout.yaxis.title.text == "source task i"


def test_displaying_the_panel_sends_both_figures_as_they_are_now(monkeypatch):
    # figures inside a box are drawn from their widget state, refreshed by plotly only in its own display hook
    import IPython.display
    p = panel()
    p.source.value = "other"
    assert p.heatmap._widget_data == [] and p.figure._widget_data == [], "plotly has not sent the traces yet"
    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    p._ipython_display_()
    assert shown == [p.widget]
    for fig in (p.heatmap, p.figure):
        assert [t["uid"] for t in fig._widget_data] == [t.uid for t in fig.data] and fig.data
    assert p.heatmap._widget_data[0]["z"] == z(p.heatmap.data[0]) == [list(r) for r in OTHER.tolist()]
