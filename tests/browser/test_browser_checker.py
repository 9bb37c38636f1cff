"""The browser checker fails when a student would see a problem (so a passing notebook test means something).

A small notebook with known faults runs in a normal JupyterLab and in one with
the widget extension disabled (what ``jupyter labextension disable
@jupyter-widgets/jupyterlab-manager`` does); the checker must report each fault
and nothing about the cells that are fine.
"""
from __future__ import annotations

import nbformat
import pytest

from labdriver import WIDGET_EXTENSION, NotebookPage, check, start_lab

pytestmark = pytest.mark.browser

CELLS = [
    "import ipywidgets as W\nimport numpy as np\nimport plotly.graph_objects as go",
    # 1: a panel whose Train button and slider are wired to nothing
    "W.VBox([W.Button(description='Train'), W.FloatSlider(description='unused'),\n"
    "        go.FigureWidget(go.Scatter(y=[1, 2, 3]))])",
    # 2: a figure without data
    "go.FigureWidget(go.Scatter(x=[], y=[]))",
    # 3: fine: a plotly figure shown through the plotly MIME renderer, its data a numpy array
    #    (sent as a base64 typed array, which must count as data)
    "go.Figure(go.Bar(x=['a', 'b'], y=np.array([1.0, 2.0])))",
    # 4: a panel that applies its dropdown on Run, wired to nothing
    "W.VBox([W.Dropdown(options=['a', 'b']), W.Button(description='Run'),\n"
    "        go.FigureWidget(go.Scatter(y=[1, 2]))])",
    # 5: a traceback printed to stderr
    "import traceback\ntry:\n    1 / 0\nexcept ZeroDivisionError:\n    traceback.print_exc()",
    # 6: an exception, which stops Run All
    "raise ValueError('a student would see this')",
    # 7: never reached
    "print('never reached')",
]


def _notebook(folder, cells) -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, folder / "faults.ipynb")
    return "faults.ipynb"


def _by_cell(problems):
    out = {}
    for p in problems:
        out.setdefault(int(p.split()[1]), []).append(p)
    return out


def test_checker_reports_every_fault(chromium, tmp_path):
    lab = start_lab(tmp_path)
    page = NotebookPage(chromium, lab, _notebook(lab.root, CELLS))
    try:
        page.open()
        page.run_all()
        found = page.settle(timeout=30)
        panels = page.panels()
        assert [p["cell"] for p in panels] == [1, 4]
        trouble, done = page.exercise(panels[0], timeout=5)
        run_trouble, run_done = page.exercise(panels[1], timeout=5)
    finally:
        page.close()
        lab.stop()
    problems = _by_cell(found.problems)
    assert set(problems) == {2, 5, 6, 7}, found.problems
    assert "no data points" in problems[2][0]
    assert "traceback" in problems[5][0] and "ZeroDivisionError" in problems[5][0]
    assert "raised ValueError: a student would see this" in problems[6][0]
    assert "never executed" in problems[7][0]
    assert done == [] and len(trouble) == 2, trouble
    assert "pressing Train did not make the plot grow" in trouble[0]
    assert "slider" in trouble[1] and "did not change what is plotted" in trouble[1]
    assert run_done == [] and len(run_trouble) == 1, run_trouble
    assert "dropdown" in run_trouble[0] and "then Run, did not change what is plotted" in run_trouble[0]


def test_checker_fails_when_widgets_cannot_render(chromium, tmp_path):
    lab = start_lab(tmp_path, disabled_extensions=(WIDGET_EXTENSION,))
    page = NotebookPage(chromium, lab, _notebook(lab.root, CELLS[:4]))
    try:
        page.open()
        page.run_all()
        found = page.settle(timeout=30)
    finally:
        page.close()
        lab.stop()
    problems = _by_cell(found.problems)
    assert set(problems) == {1, 2}, found.problems  # the plotly MIME figure of cell 3 still renders
    for cell in (1, 2):
        assert any("widget did not render; JupyterLab shows it as text/plain" in p for p in problems[cell])
        assert any("raw widget model text" in p for p in problems[cell])


def test_check_reads_widget_errors():
    """The pure checker on a hand-made page description: widget error texts are failures."""
    cell = {"index": 0, "count": 1, "source": "panel", "outputs": [{
        "type": "display_data", "mimes": ["text/plain", "application/vnd.jupyter.widget-view+json"],
        "ename": None, "evalue": None, "name": None, "text": "", "plain": "VBox(children=(FigureWidget({",
        "used": "application/vnd.jupyter.widget-view+json", "shown": "Error displaying widget: model not found",
        "views": 1, "errorWidgets": 1, "plots": []}]}
    problems = check([cell]).problems
    assert any("Error displaying widget" in p for p in problems)
    assert any("failed to render" in p for p in problems)
    assert any("1 of 1 FigureWidget(s) show no plot" in p for p in problems)
    fine = dict(cell["outputs"][0], shown="", errorWidgets=0, plots=[{"traces": 1, "points": 3, "drawn": True}])
    assert check([dict(cell, outputs=[fine])]).problems == []
