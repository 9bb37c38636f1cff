"""Every notebook in JupyterLab in headless Chromium: the second part (see ``test_browser_notebooks.py``)."""
from __future__ import annotations

from pathlib import Path

import pytest

from labdriver import assert_notebook_works, workbook_notebooks

PART = workbook_notebooks(part=1)
pytestmark = pytest.mark.browser


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("path", PART, ids=[p.stem for p in PART])
def test_notebook_in_jupyterlab(path: Path, lab, chromium, screenshots):
    assert_notebook_works(chromium, lab, path, screenshots)
