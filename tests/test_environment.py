"""The set-up files agree with each other, and the README's lab command serves the notebooks."""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _environment_yml_names() -> set[str]:
    """Package names in environment.yml's dependencies (conda and pip), without python, pip and -e ."""
    names, in_deps = set(), False
    for raw in (ROOT / "environment.yml").read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line.startswith(" "):
            in_deps = line.startswith("dependencies:")
            continue
        item = line.strip()
        if not in_deps or not item.startswith("- ") or item.endswith(":"):
            continue
        item = item[2:].strip()
        name = _name(item)
        if item.startswith("-e") or name in {"pip", "python"}:
            continue
        names.add(name)
    return names


def test_environment_yml_names_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["lab"]}
    assert _environment_yml_names() == wanted


def test_torch_range_admits_2_13_everywhere():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_req = next(r for r in project["dependencies"] if _name(r) == "torch")
    from packaging.specifiers import SpecifierSet
    spec = SpecifierSet(torch_req[len("torch"):])
    assert "2.13.0" in spec and "2.15.0" not in spec
    assert "torch>=2.2,<2.15" in (ROOT / "environment.yml").read_text()


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make lab" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec make test$", ci, re.M)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_lab_serves_the_notebooks(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"),
               PYTHON=sys.executable)
    args = f"--no-browser --allow-root --ServerApp.ip=127.0.0.1 --port={port} --ServerApp.port_retries=0 --ServerApp.token={token}"
    proc = subprocess.Popen(["make", "-s", "lab", f"JUPYTER_ARGS={args}", f"VENV={Path(sys.prefix)}"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        listing = None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/api/contents/",
                                             headers={"Authorization": f"token {token}"})
                listing = json.load(urllib.request.urlopen(req, timeout=5))
                break
            except OSError:
                time.sleep(1)
        assert listing is not None, proc.stdout.read().decode() if proc.poll() is not None else "server never answered"
        names = {item["name"] for item in listing["content"]}
        expected = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
        assert "00_start_here.ipynb" in names and expected <= names
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10).read().decode()
        assert "JupyterLab" in page
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
