"""Every notebook, run in JupyterLab in headless Chromium and checked as a student would see it (first part).

nbval runs the kernels only; here the front end must render every widget and
every plotly figure with data, show no traceback, and the live panels must
respond: Train / Play makes the plot grow, a dropdown or slider changes what is
plotted. A screenshot of each notebook after the run goes to the screenshot
folder (``$MTLKIT_SCREENSHOTS``, default ``test-artifacts/screenshots/``).

The notebooks are split over this file and ``test_browser_notebooks_more.py``
(:func:`labdriver.workbook_notebooks`), so two test workers share them.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from labdriver import NOTEBOOK_DIR, assert_notebook_works, workbook_notebooks

PART = workbook_notebooks(part=0)
pytestmark = pytest.mark.browser


def test_the_parts_cover_every_notebook():
    every = workbook_notebooks()
    assert len(every) >= 6, f"expected the workbook's notebooks in {NOTEBOOK_DIR}, found {every}"
    assert sorted(workbook_notebooks(part=0) + workbook_notebooks(part=1)) == every


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("path", PART, ids=[p.stem for p in PART])
def test_notebook_in_jupyterlab(path: Path, lab, chromium, screenshots):
    assert_notebook_works(chromium, lab, path, screenshots)
