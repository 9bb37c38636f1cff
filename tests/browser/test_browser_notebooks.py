"""Every notebook, run in JupyterLab in headless Chromium and checked as a student would see it.

nbval runs the kernels only; here the front end must render every widget and
every plotly figure with data, show no traceback, and the live panels must
respond: Train / Play makes the plot grow, a dropdown or slider changes what is
plotted. A screenshot of each notebook after the run goes to the screenshot
folder (``$MTLKIT_SCREENSHOTS``, default ``test-artifacts/screenshots/``).
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from labdriver import NotebookPage

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
# A notebook that builds one of these shows a live panel whose plot must grow when trained.
LIVE_PANELS = ("TrainingPanel", "TransferPanel", "ArchitecturePanel")

pytestmark = pytest.mark.browser


def test_notebooks_are_found():
    assert len(NOTEBOOKS) >= 6, f"expected the workbook's notebooks in {NOTEBOOK_DIR}, found {NOTEBOOKS}"


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_in_jupyterlab(path: Path, lab, chromium, screenshots):
    page = NotebookPage(chromium, lab, path.name)
    problems, done, shots, times = [], [], [], {}
    clock = time.monotonic()

    def lap(name):
        nonlocal clock
        times[name], clock = time.monotonic() - clock, time.monotonic()
    try:
        page.open()
        lap("open")
        page.run_all()
        lap("run all")
        found = page.settle()
        problems += found.problems
        lap("check")
        for panel in page.panels():
            trouble, did = page.exercise(panel)
            problems += trouble
            done += did
        lap("panels")
        # After the panels were used: nothing broke (a control may legitimately leave a plot empty).
        after = page.settle(timeout=30, ignore=lambda p: "no data points" in p)
        problems += [p for p in after.problems if p not in problems]
    finally:
        try:  # also after a failure: the screenshot shows what went wrong
            shots = page.screenshots(screenshots, path.stem)
            lap("screenshots")
        except Exception as exc:  # noqa: BLE001 - a failed screenshot must not hide the real failure
            print(f"no screenshot of {path.name}: {exc}")
        page.close()
        lab.shutdown_kernels()
    print(f"\n{path.name}: {found.widgets} widget(s), {found.figures} figure(s) checked; "
          + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    print("\n".join(done))
    print("screenshots:", ", ".join(map(str, shots)))
    assert not problems, f"{path.name} in JupyterLab:\n  " + "\n  ".join(problems)
    if any(name in path.read_text() for name in LIVE_PANELS):
        assert any(" grew the plot" in d for d in done), f"{path.name}: no live panel was trained in the browser"
