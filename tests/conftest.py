"""Shared fixtures, and a per-notebook execution-time report at the end of the run."""
from __future__ import annotations

import os
from collections import defaultdict

import pytest
import torch

os.environ.setdefault("MTLKIT_QUICK", "1")

_NOTEBOOK_TIMES: dict[str, float] = defaultdict(float)
_BROWSER_TIMES: dict[str, float] = defaultdict(float)  # tests marked `browser` (tests/browser/)
_SCREENSHOTS: set[str] = set()


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _NOTEBOOK_TIMES[path] += report.duration
    if "browser" in report.keywords:
        _BROWSER_TIMES[report.nodeid] += report.duration
        _SCREENSHOTS.update(v for k, v in report.user_properties if k == "screenshots")


def pytest_terminal_summary(terminalreporter):
    if _NOTEBOOK_TIMES:
        terminalreporter.section("notebook execution times (quick mode)")
        for path, seconds in sorted(_NOTEBOOK_TIMES.items()):
            terminalreporter.write_line(f"{seconds:7.1f} s  {path}")
        terminalreporter.write_line(f"{sum(_NOTEBOOK_TIMES.values()):7.1f} s  total")
    if _BROWSER_TIMES:
        terminalreporter.section("browser tests (JupyterLab in headless Chromium)")
        for nodeid, seconds in sorted(_BROWSER_TIMES.items()):
            terminalreporter.write_line(f"{seconds:7.1f} s  {nodeid}")
        terminalreporter.write_line(f"{sum(_BROWSER_TIMES.values()):7.1f} s  total over {len(_BROWSER_TIMES)} tests")
        for folder in sorted(_SCREENSHOTS):
            terminalreporter.write_line(f"screenshots: {folder}")


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_cuda)


@pytest.fixture(autouse=True)
def _isolated_data(tmp_path_factory, monkeypatch):
    """Tests cache generated data in one temporary folder, never in the checkout's data/."""
    monkeypatch.setenv("MTLKIT_DATA", str(tmp_path_factory.getbasetemp() / "data"))


@pytest.fixture
def devices():
    out = [torch.device("cpu")]
    if torch.cuda.is_available():
        out.append(torch.device("cuda"))
    return out
