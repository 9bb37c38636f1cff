"""JupyterLab in headless Chromium: start a lab, open a notebook, run it, and check it as a student sees it.

nbval runs the kernels only; it cannot see whether a widget or a plotly figure
renders. These helpers drive the real front end (Playwright's sync API with the
system's Chromium, never a downloaded browser) and report, in plain sentences,
every problem a student would see: a widget that does not render, a figure
without data, a traceback, a live plot that does not grow.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_EXTENSION = "@jupyter-widgets/jupyterlab-manager"
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser",
                       "/usr/lib/chromium-browser/chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]


def find_chromium() -> str | None:
    """The system's Chromium (``$MTLKIT_CHROMIUM`` first), or None."""
    for name in (os.environ.get("MTLKIT_CHROMIUM"), *CHROMIUM_CANDIDATES):
        if not name:
            continue
        path = name if os.path.isabs(name) else shutil.which(name)
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# User settings for the test lab: every cell in the DOM (no windowing, so off-screen
# outputs are checked too), no autosave, no news pop-up in the screenshots.
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


class LabServer:
    """A JupyterLab serving ``root`` on a loopback port with a token, in its own config/runtime folders.

    ``disabled_extensions`` go to the lab's ``page_config.json``, exactly what
    ``jupyter labextension disable`` writes.
    """

    def __init__(self, root: Path, home: Path, disabled_extensions: tuple[str, ...] = (), env: dict | None = None):
        self.root, self.home = Path(root), Path(home)
        self.token = os.urandom(16).hex()
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config, runtime, settings = self.home / "config", self.home / "runtime", self.home / "settings"
        for d in (config / "labconfig", runtime, settings, self.home / "workspaces"):
            d.mkdir(parents=True, exist_ok=True)
        # No websocket keep-alive pings on loopback: a starved CI machine can keep the page busy for a
        # minute (each plotly FigureWidget ships ~5 MB of JavaScript), and a missed pong would make the
        # server drop the kernel's websocket and, with it, messages of the run.
        (config / "jupyter_server_config.json").write_text(json.dumps(
            {"ServerApp": {"tornado_settings": {"ws_ping_interval": 0}}}))
        (config / "labconfig" / "page_config.json").write_text(json.dumps(
            {"disabledExtensions": {name: True for name in disabled_extensions}}))
        for plugin, values in SETTINGS.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        self.env = {**os.environ, **(env or {}), "JUPYTER_CONFIG_DIR": str(config),
                    "JUPYTER_RUNTIME_DIR": str(runtime), "JUPYTER_PLATFORM_DIRS": "1"}
        self.env.setdefault("OMP_NUM_THREADS", "1")
        self.env.setdefault("MTLKIT_QUICK", "1")
        self.log_path = self.home / "lab.log"
        self.proc: subprocess.Popen | None = None
        self.disabled_extensions = disabled_extensions

    def start(self, timeout: float = 120.0) -> "LabServer":
        bin_dir = Path(sys.executable).parent
        cmd = [str(bin_dir / "jupyter-lab"), "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               "--ServerApp.allow_root=True", "--LabApp.expose_app_in_browser=True",
               f"--LabApp.user_settings_dir={self.home / 'settings'}",
               f"--LabApp.workspaces_dir={self.home / 'workspaces'}", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if not Path(cmd[0]).exists():
            cmd[:1] = [sys.executable, "-m", "jupyterlab"]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=self.env, cwd=self.root, stdout=self._log, stderr=subprocess.STDOUT)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "/api/status")
                return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"JupyterLab did not answer within {timeout} s:\n{self.log_tail()}")

    def api(self, method: str, path: str):
        request = urllib.request.Request(self.url + path, method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Stop every kernel this lab runs (a notebook's training threads die with it)."""
        for kernel in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def notebook_url(self, name: str) -> str:
        """The notebook alone in a fresh workspace (no tabs, and so no kernels, restored from earlier pages)."""
        self._pages = getattr(self, "_pages", 0) + 1
        return f"{self.url}/lab/workspaces/page{self._pages}/tree/{name}?reset&token={self.token}"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text()[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()


def start_lab(tmp: Path, notebooks: Path | None = None, **kwargs) -> LabServer:
    """A JupyterLab in ``tmp`` serving a copy of ``notebooks`` (so autosave never touches the checkout)."""
    root = tmp / "root"
    if notebooks is not None:
        shutil.copytree(notebooks, root, ignore=shutil.ignore_patterns("assignments", ".ipynb_checkpoints"))
    else:
        root.mkdir(parents=True)
    return LabServer(root, tmp / "home", env={"MTLKIT_DATA": str(tmp / "data")}, **kwargs).start()


# -- JavaScript run in the page (JupyterLab exposes its app as window.jupyterapp) --------------

_PANEL = "const app = window.jupyterapp; const panel = app.shell.currentWidget;"

# How many values a plotly data array holds: a plain or typed array, or plotly's typed-array
# spec {dtype, bdata (base64), shape} in which plotly >= 6 sends numpy arrays.
_LENGTH = """const LENGTH = a => {
  if (!a) return 0;
  if (a.length !== undefined) return a.length;
  if (typeof a.bdata === 'string') {
    if (a.shape) return String(a.shape).split(',').reduce((p, n) => p * Number(n), 1);
    const size = {f8: 8, i8: 8, u8: 8, f4: 4, i4: 4, u4: 4, i2: 2, u2: 2, i1: 1, u1: 1, u1c: 1}[a.dtype] || 8;
    const pad = a.bdata.endsWith('==') ? 2 : a.bdata.endsWith('=') ? 1 : 0;
    return Math.floor((a.bdata.length * 3 / 4 - pad) / size); }
  return 0; };"""

JS_READY = """() => { const app = window.jupyterapp; if (!app) return 'no app';
  const panel = app.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext) return 'no notebook';
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel) return 'no kernel';
  return kernel.status; }"""

JS_RUN_ALL = """() => {""" + _PANEL + """
  window.__mtlkitRun = {done: false, ok: null};
  app.commands.execute('notebook:run-all-cells').then(
    ok => { window.__mtlkitRun = {done: true, ok: ok}; },
    err => { window.__mtlkitRun = {done: true, ok: false, error: String(err)}; });
}"""

JS_PROGRESS = """() => {""" + _PANEL + """
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  const prompts = cells.map(c => (c.node.querySelector('.jp-InputPrompt') || {}).textContent || '');
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return {run: window.__mtlkitRun || null, kernel: kernel ? kernel.status : 'none',
          code: cells.length, executed: cells.filter(c => c.model.executionCount !== null).length,
          busy: prompts.filter(p => p.includes('*')).length}; }"""

# Everything a student would look at, per code cell and output: what the kernel sent (the model), which
# renderer JupyterLab picked for it (rendermime's preferred MIME type) and what shows (the DOM).
JS_INSPECT = """() => {""" + _PANEL + _LENGTH + """
  const rendermime = panel.content.rendermime;
  const plotInfo = gd => {
    const data = gd.data || [];
    const count = t => {
      for (const k of ['x', 'y', 'z', 'values', 'lat']) { const n = LENGTH(t[k]); if (n) return n; }
      if (t.cells && t.cells.values && t.cells.values.length) return t.cells.values.length;
      return 0; };
    return {traces: data.length, points: data.reduce((s, t) => s + count(t), 0),
            drawn: gd.querySelectorAll('.main-svg').length > 0 &&
                   gd.querySelectorAll('.trace, .hm, .im, .table').length > 0}; };
  return panel.content.widgets.map((cell, index) => {
    if (cell.model.type !== 'code') return null;
    const children = cell.outputArea ? cell.outputArea.widgets : [];
    const outputs = [];
    for (let i = 0; i < cell.model.outputs.length; i++) {
      const model = cell.model.outputs.get(i);
      const o = model.toJSON();
      const data = o.data || {};
      const child = children[i];
      const node = child ? (child.node.querySelector('.jp-OutputArea-output') || child.node) : null;
      const plots = node ? [node, ...node.querySelectorAll('.js-plotly-plot')]
                             .filter(n => n.classList.contains('js-plotly-plot')) : [];
      outputs.push({type: o.output_type, mimes: Object.keys(data), ename: o.ename || null,
                    evalue: o.evalue || null, name: o.name || null,
                    text: (o.text ? [].concat(o.text).join('') : '').slice(-4000),
                    plain: [].concat(data['text/plain'] || []).join('').slice(0, 4000),
                    used: Object.keys(data).length ? rendermime.preferredMimeType(model.data, 'any') || null : null,
                    shown: node ? node.innerText.slice(0, 4000) : null,
                    views: node ? node.querySelectorAll('.lm-Widget').length : 0,
                    errorWidgets: node ? node.querySelectorAll('.jupyter-widgets-error-widget').length : 0,
                    plots: plots.map(plotInfo)}); }
    return {index, count: cell.model.executionCount, source: cell.model.sharedModel.getSource().slice(0, 200),
            outputs};
  }).filter(c => c !== null); }"""

# Live panels: a widget output holding a plotly figure and controls. Elements get data-mtlkit ids.
JS_PANELS = """() => {""" + _PANEL + """
  const found = []; let id = 0;
  panel.content.widgets.forEach((cell, index) => {
    if (cell.model.type !== 'code') return;
    cell.node.querySelectorAll('.jp-OutputArea-output').forEach(node => {
      if (!node.querySelector(':scope > .jupyter-widgets') || !node.querySelector('.js-plotly-plot')) return;
      const buttons = [...node.querySelectorAll('button.widget-button')].map(b => b.innerText.trim());
      const dropdowns = node.querySelectorAll('.widget-dropdown select').length;
      const sliders = node.querySelectorAll('.widget-slider .noUi-handle, .widget-hslider .noUi-handle').length;
      if (!buttons.length && !dropdowns && !sliders) return;
      const key = `p${id++}`; node.setAttribute('data-mtlkit', key);
      found.push({key, cell: index, buttons, dropdowns, sliders});
    }); });
  return found; }"""

JS_PLOT_STATE = """key => {""" + _LENGTH + """
  const node = document.querySelector(`[data-mtlkit="${key}"]`);
  if (!node) return null;
  let points = 0, sig = 0;
  const text = JSON.stringify([...node.querySelectorAll('.js-plotly-plot')].map(gd => (gd.data || []).map(t => {
    for (const k of ['x', 'y', 'z']) { const n = LENGTH(t[k]); if (n) { points += n; break; } }
    return [t.type, t.name, t.x, t.y, t.z]; })));
  for (let i = 0; i < text.length; i++) sig = (sig * 31 + text.charCodeAt(i)) | 0;
  const status = [...node.querySelectorAll('.widget-html, .widget-label')].map(e => e.innerText).join(' | ');
  return {points, sig, status}; }"""

_SCROLLER = """const panel = window.jupyterapp.shell.currentWidget;
  const n = panel.node.querySelector('.jp-WindowedPanel-outer') || panel.content.node;"""
JS_SCROLL_HEIGHT = "() => {" + _SCROLLER + " return n.scrollHeight; }"
JS_SCROLL_TO = "y => {" + _SCROLLER + " n.scrollTop = y; }"


# A live panel's buttons, by label: start training (the plot must grow), stop it, and apply the controls.
GO_BUTTONS = ("Train", "Play")
STOP_BUTTONS = ("Stop", "Pause")
APPLY_BUTTONS = ("Run",)

# Problems that may only mean the front end has not finished drawing yet.
TRANSIENT = ("Loading widget", "(0 traces)", "drew none of its", "show no plot", "holds no widget view")


@dataclass
class Inspection:
    """What :func:`check` found in one notebook page."""
    problems: list[str] = field(default_factory=list)
    widgets: int = 0
    figures: int = 0


def check(cells: list[dict]) -> Inspection:
    """Every problem a student would see, from :data:`JS_INSPECT`'s view of the notebook."""
    found = Inspection()
    raw_model = re.compile(r"\b(FigureWidget\(\{|[A-Z]\w*Box\(children=|\w+(Slider|Dropdown|Button)\()")
    for cell in cells:
        first = cell["source"].splitlines()[0][:60] if cell["source"] else ""
        where = f"cell {cell['index']} ({first!r})"
        if cell["count"] is None:
            found.problems.append(f"{where} was never executed")
        for o in cell["outputs"]:
            shown = o["shown"] or ""
            if o["type"] == "error":
                found.problems.append(f"{where} raised {o['ename']}: {o['evalue']}")
                continue
            if o["type"] == "stream":
                if "Traceback (most recent call last)" in o["text"]:
                    found.problems.append(f"{where} printed a traceback on {o['name']}: {o['text'][-300:]!r}")
                continue
            if WIDGET_MIME in o["mimes"]:
                found.widgets += 1
                if o["used"] != WIDGET_MIME:
                    found.problems.append(f"{where}: a widget did not render; JupyterLab shows it as {o['used']}: "
                                          f"{shown[:100]!r}")
                elif o["views"] == 0:
                    found.problems.append(f"{where}: a widget output holds no widget view")
                for line in shown.splitlines():
                    if line.lstrip().lower().startswith("error:") or "Traceback" in line:
                        found.problems.append(f"{where}: a widget shows an error: {line.strip()[:200]!r}")
                expected_figures = o["plain"].count("FigureWidget(")
                if o["used"] == WIDGET_MIME and len(o["plots"]) < expected_figures:
                    found.problems.append(f"{where}: {expected_figures - len(o['plots'])} of {expected_figures} "
                                          f"FigureWidget(s) show no plot")
            elif PLOTLY_MIME in o["mimes"]:
                if o["used"] != PLOTLY_MIME:
                    found.problems.append(f"{where}: a plotly figure did not render; JupyterLab shows it as "
                                          f"{o['used']}")
                elif not o["plots"]:
                    found.problems.append(f"{where}: a plotly figure output shows no plot")
            if o["errorWidgets"]:
                found.problems.append(f"{where}: {o['errorWidgets']} widget view(s) failed to render "
                                      f"(the error widget is shown)")
            for bad in ("Error displaying widget", "Loading widget"):
                if bad in shown:
                    found.problems.append(f"{where}: a widget shows {shown[shown.index(bad):][:100]!r}")
            if o["used"] != WIDGET_MIME and raw_model.search(shown):
                found.problems.append(f"{where}: raw widget model text instead of a widget: {shown[:100]!r}")
            if o["used"] == "application/vnd.jupyter.stderr" and "Traceback" in shown:
                found.problems.append(f"{where}: traceback shown: {shown[-300:]!r}")
            for p in o["plots"]:
                found.figures += 1
                if p["points"] == 0:
                    found.problems.append(f"{where}: a plotly figure has no data points ({p['traces']} traces)")
                elif not p["drawn"]:
                    found.problems.append(f"{where}: a plotly figure drew none of its {p['traces']} traces")
    return found


class NotebookPage:
    """One notebook open in JupyterLab in a fresh browser page."""

    def __init__(self, browser, lab: LabServer, name: str, width: int = 1400, height: int = 1000):
        self.lab, self.name = lab, name
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.console_errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.console_errors.append(f"page error: {exc}"))
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text[:300]))

    def open(self, timeout: float = 120.0) -> None:
        self.page.goto(self.lab.notebook_url(self.name), timeout=timeout * 1000)
        self.wait_for(lambda: self.page.evaluate(JS_READY) == "idle", timeout, "the kernel to start")

    def wait_for(self, condition, timeout: float, what: str, interval: float = 0.25):
        end = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > end:
                raise TimeoutError(f"{self.name}: waited {timeout:.0f} s for {what}")
            time.sleep(interval)

    def run_all(self, timeout: float = 600.0) -> dict:
        """Run > Run All Cells; return when the run ended and the kernel is idle."""
        self.page.evaluate(JS_RUN_ALL)

        def finished():
            p = self.page.evaluate(JS_PROGRESS)
            return p if p["run"] and p["run"]["done"] and p["kernel"] == "idle" and p["busy"] == 0 else None
        try:
            return self.wait_for(finished, timeout, "Run All Cells to finish", interval=0.5)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; progress {self.page.evaluate(JS_PROGRESS)}") from None

    def inspect(self) -> list[dict]:
        return self.page.evaluate(JS_INSPECT)

    def settle(self, timeout: float = 60.0, quiet: float = 10.0, ignore=lambda problem: False) -> Inspection:
        """Check the page once widgets and figures are done rendering.

        Returns at once when nothing is wrong; otherwise when the page has not
        changed for ``quiet`` s and no problem may still be rendering (:data:`TRANSIENT`),
        or after ``timeout`` s. Problems for which ``ignore(problem)`` is true are dropped.
        """
        end = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while True:
            cells = self.inspect()
            result = check(cells)
            result.problems = [p for p in result.problems if not ignore(p)]
            if cells != last:
                last, since = cells, time.monotonic()
            rendering = any(any(t in p for t in TRANSIENT) for p in result.problems)
            if not result.problems or time.monotonic() > end or (
                    not rendering and time.monotonic() - since >= quiet):
                return result
            time.sleep(0.5)

    def panels(self) -> list[dict]:
        return self.page.evaluate(JS_PANELS)

    def plot_state(self, key: str) -> dict:
        return self.page.evaluate(JS_PLOT_STATE, key)

    def panel(self, key: str):
        return self.page.locator(f'[data-mtlkit="{key}"]')

    def click_button(self, key: str, label: str) -> None:
        button = self.panel(key).locator("button.widget-button", has_text=label).first
        button.scroll_into_view_if_needed()
        button.click()

    def change_control(self, key: str) -> str:
        """Pick another option in the panel's first dropdown, else move its first slider; say what changed."""
        node = self.panel(key)
        select = node.locator(".widget-dropdown select")
        if select.count():
            first = select.first
            options = first.locator("option").all_inner_texts()
            current = first.evaluate("s => s.options[s.selectedIndex] ? s.options[s.selectedIndex].text : ''")
            choice = next(o for o in options if o != current)
            first.scroll_into_view_if_needed()
            first.select_option(label=choice)
            return f"dropdown {current!r} -> {choice!r}"
        handle = node.locator(".widget-slider .noUi-handle, .widget-hslider .noUi-handle").first
        handle.scroll_into_view_if_needed()
        handle.focus()
        for _ in range(3):
            handle.press("ArrowLeft")
        handle.blur()
        return "slider moved three steps left"

    def wait_idle(self, key: str, timeout: float = 60.0, quiet: float = 1.5) -> dict:
        """Wait until the kernel is idle and the panel's plots have not changed for ``quiet`` s."""
        last, since = None, time.monotonic()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            state = self.plot_state(key)
            idle = self.page.evaluate(JS_READY) == "idle"
            if state != last or not idle:
                last, since = state, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return state
            time.sleep(0.25)
        return last

    def exercise(self, panel: dict, timeout: float = 90.0) -> tuple[list[str], list[str]]:
        """Use a live panel as a student would; return (problems, what was done).

        Train / Play (:data:`GO_BUTTONS`) must make the plot grow (then Stop / Pause).
        Changing the first dropdown (else slider) must change what is plotted: at
        once, or, for panels that apply changes when asked, after pressing Run
        (:data:`APPLY_BUTTONS`) or Train / Play. Without such a button the change
        gets ``timeout`` s to show; with one, 10 s before the button is pressed.
        """
        key, buttons = panel["key"], panel["buttons"]
        where = f"cell {panel['cell']}"
        go = next((b for b in buttons if b in GO_BUTTONS), None)
        stop = next((b for b in buttons if b in STOP_BUTTONS), None)
        apply = next((b for b in buttons if b in APPLY_BUTTONS), None)
        problems, done = [], []

        def press_and_grow(before: dict) -> bool:
            self.click_button(key, go)
            try:
                self.wait_for(lambda: self.plot_state(key)["points"] > before["points"], timeout, "the plot to grow")
                grown = True
            except TimeoutError:
                grown = False
            if stop:
                self.click_button(key, stop)
            return grown

        def changed(before: dict, within: float) -> bool:
            try:
                self.wait_for(lambda: self.plot_state(key)["sig"] != before["sig"], within, "the plot to change")
                return True
            except TimeoutError:
                return False

        if go:
            before = self.wait_idle(key)
            if press_and_grow(before):
                after = self.wait_idle(key)
                done.append(f"{where}: {go} grew the plot from {before['points']} to {after['points']} points")
            else:
                problems.append(f"{where}: pressing {go} did not make the plot grow within {timeout:.0f} s "
                                f"(status: {self.plot_state(key)['status'][:200]!r})")
        if panel["dropdowns"] or panel["sliders"]:
            before = self.wait_idle(key)
            what = self.change_control(key)
            if changed(before, 10.0 if (go or apply) else timeout):
                done.append(f"{where}: {what} changed the plot")
            elif apply:
                self.click_button(key, apply)
                if changed(before, timeout):
                    done.append(f"{where}: {what}, then {apply}, changed the plot")
                else:
                    problems.append(f"{where}: {what}, then {apply}, did not change what is plotted")
            elif go and press_and_grow(self.wait_idle(key)):
                done.append(f"{where}: {what}, then {go}, changed the plot")
            else:
                problems.append(f"{where}: {what} did not change what is plotted")
            self.wait_idle(key)
        return problems, done

    def screenshots(self, folder: Path, stem: str, max_height: int = 12000) -> list[Path]:
        """Full-notebook screenshots: the window is made as tall as the notebook (split if very long)."""
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"{stem}*.png"):
            old.unlink()
        width = self.page.viewport_size["width"]
        total = self.page.evaluate(JS_SCROLL_HEIGHT) + 200
        height = min(max(total, 800), max_height)
        self.page.set_viewport_size({"width": width, "height": height})
        self.page.wait_for_timeout(500)
        paths, y, part = [], 0, 1
        while True:
            self.page.evaluate(JS_SCROLL_TO, y)
            self.page.wait_for_timeout(300)
            path = folder / (f"{stem}.png" if total <= max_height else f"{stem}-{part}.png")
            self.page.screenshot(path=str(path), full_page=True)
            paths.append(path)
            y += height - 250
            part += 1
            if y >= total - 250 or total <= max_height:
                return paths

    def close(self) -> None:
        self.context.close()


# -- one notebook, start to end, as the per-notebook browser tests run it ---------------------

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"


def workbook_notebooks(part: int | None = None, parts: int = 2) -> list[Path]:
    """The workbook's numbered notebooks; with ``part`` (0-based), every ``parts``-th one from it.

    The per-notebook tests are split over ``parts`` test files this way so that
    pytest-xdist (``--dist loadfile``) runs them on several workers, each file with
    its own JupyterLab; interleaving keeps the long and the short notebooks mixed.
    """
    paths = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    return paths if part is None else paths[part::parts]


#: A notebook that builds one of these shows a live panel whose plot must grow when trained.
LIVE_PANELS = ("TrainingPanel", "TransferPanel", "ArchitecturePanel")


@dataclass
class NotebookReport:
    """What :func:`check_notebook` found and did in one notebook."""
    name: str
    problems: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)
    times: dict[str, float] = field(default_factory=dict)
    widgets: int = 0
    figures: int = 0

    def summary(self) -> str:
        lines = [f"{self.name}: {self.widgets} widget(s), {self.figures} figure(s) checked; "
                 + ", ".join(f"{k} {v:.1f} s" for k, v in self.times.items()), *self.done,
                 "screenshots: " + ", ".join(map(str, self.screenshots))]
        return "\n".join(lines)


def check_notebook(browser, lab: LabServer, path: Path, screenshots: Path) -> NotebookReport:
    """Open ``path`` in ``lab``, Run All, check every output, use every live panel, take screenshots.

    The screenshots are taken even when a step fails, so they show what went wrong.
    """
    page = NotebookPage(browser, lab, path.name)
    report = NotebookReport(path.name)
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        report.times[name], clock = time.monotonic() - clock, time.monotonic()
    try:
        page.open()
        lap("open")
        page.run_all()
        lap("run all")
        found = page.settle()
        report.problems += found.problems
        report.widgets, report.figures = found.widgets, found.figures
        lap("check")
        for panel in page.panels():
            trouble, did = page.exercise(panel)
            report.problems += trouble
            report.done += did
        lap("panels")
        # After the panels were used: nothing broke (a control may legitimately leave a plot empty).
        after = page.settle(timeout=30, ignore=lambda p: "no data points" in p)
        report.problems += [p for p in after.problems if p not in report.problems]
    finally:
        try:
            report.screenshots = page.screenshots(screenshots, path.stem)
            lap("screenshots")
        except Exception as exc:  # noqa: BLE001 - a failed screenshot must not hide the real failure
            print(f"no screenshot of {path.name}: {exc}")
        page.close()
        lab.shutdown_kernels()
    if any(name in path.read_text() for name in LIVE_PANELS) and not any(" grew the plot" in d for d in report.done):
        report.problems.append("no live panel was trained in the browser (none was found, or none grew)")
    return report


def assert_notebook_works(browser, lab: LabServer, path: Path, screenshots: Path) -> NotebookReport:
    """:func:`check_notebook`, print what was checked and done, fail with every problem found."""
    report = check_notebook(browser, lab, path, screenshots)
    print("\n" + report.summary())
    assert not report.problems, f"{path.name} in JupyterLab:\n  " + "\n  ".join(report.problems)
    return report
