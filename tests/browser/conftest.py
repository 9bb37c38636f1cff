"""Fixtures for the browser tests: the system's Chromium, one JupyterLab per test module, a screenshot folder.

Without a Chromium binary (``make browser`` installs Debian's ``chromium``;
``$MTLKIT_CHROMIUM`` names another binary) the tests are skipped with the
reason on a developer's machine, but fail in CI (``$CI`` set), where a skipped
browser test would hide a broken front end. Playwright drives the browser; no
browser is ever downloaded.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from labdriver import CHROMIUM_ARGS, CHROMIUM_CANDIDATES, find_chromium, start_lab

REPO = Path(__file__).resolve().parents[2]


def screenshot_folder() -> Path:
    """``$MTLKIT_SCREENSHOTS``, else ``test-artifacts/screenshots/`` in the checkout (ignored by git)."""
    return Path(os.environ.get("MTLKIT_SCREENSHOTS") or REPO / "test-artifacts" / "screenshots").resolve()


@pytest.fixture(scope="module")
def chromium():
    path = find_chromium()
    if path is None:
        why = (f"no Chromium binary (looked for $MTLKIT_CHROMIUM, {', '.join(CHROMIUM_CANDIDATES)}); "
               f"`make browser` installs Debian's chromium")
        if os.environ.get("CI"):
            pytest.fail(f"{why}; in CI the browser tests must run")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def lab(chromium, tmp_path_factory):
    """One JupyterLab for every notebook of a test module, serving a copy of notebooks/."""
    server = start_lab(tmp_path_factory.mktemp("lab"), REPO / "notebooks")
    yield server
    server.stop()


@pytest.fixture
def screenshots(request) -> Path:
    folder = screenshot_folder()
    request.node.user_properties.append(("screenshots", str(folder)))
    return folder
