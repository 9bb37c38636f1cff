"""Live training for widgets: a background runner with Play / Pause / Step / Reset.

The runner calls ``step()`` in a worker thread so the kernel stays free to
handle button clicks and slider moves while a model trains; ``refresh()``
redraws the figures, at most ``fps`` times a second (plotly redraws are far
slower than a training step). Errors in the worker are kept, shown by the panel
and re-raised by :meth:`LiveRunner.wait`, never lost.

Changes to the training state from the kernel (a new balancer, new weights)
go through :meth:`LiveRunner.between_steps`: they run at once when nothing is
running, otherwise the worker runs them before its next step, so a step never
sees half a change.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable


def sync_figure_state(figures) -> None:
    """Make each FigureWidget's widget state (what a new front-end view is drawn from) its current figure.

    plotly refreshes that state only in a FigureWidget's own display hook
    (``_repr_mimebundle_``). A figure shown inside a VBox never gets that call, so
    traces added or data changed before the box is displayed would be missing from
    the view (it shows 0 traces); calling the hook here sends the figure as it is now.
    """
    for figure in figures:
        figure._repr_mimebundle_()


class LiveRunner:
    """Drive ``step()`` in a thread until paused, finished, or ``max_steps`` is reached."""

    def __init__(self, step: Callable[[], bool | None], refresh: Callable[[], None], fps: float = 4.0,
                 on_state: Callable[[str], None] | None = None):
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self._step, self._refresh, self._period = step, refresh, 1.0 / fps
        self._on_state = on_state or (lambda state: None)
        self._thread: threading.Thread | None = None
        self._pause = threading.Event()
        self._lock = threading.RLock()
        self._pending: deque[Callable[[], None]] = deque()
        self._pending_lock = threading.Lock()
        self._worker_takes_changes = False
        self.error: BaseException | None = None
        self.steps_done = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def play(self) -> None:
        """Start training in the background (no-op if already running)."""
        if self.running:
            return
        self.error = None
        self._pause.clear()
        self._on_state("running")
        with self._pending_lock:
            self._worker_takes_changes = True
        self._thread = threading.Thread(target=self._loop, name="mtlkit-live", daemon=True)
        self._thread.start()

    def pause(self, timeout: float = 30.0) -> None:
        """Stop after the current step and wait for the worker to end."""
        self._pause.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"training thread did not stop within {timeout} s")
        self._thread = None

    def between_steps(self, change: Callable[[], None]) -> None:
        """Apply ``change()`` between two steps: now if idle, else before the worker's next step."""
        with self._pending_lock:
            if self._worker_takes_changes:
                self._pending.append(change)
                return
        with self._lock:
            change()

    def _apply_pending(self) -> None:
        while self._pending:
            self._pending.popleft()()

    def step(self, n: int = 1) -> None:
        """Run ``n`` steps now, in the caller's thread (pauses a running worker first)."""
        self.pause()
        with self._lock:
            self._apply_pending()
            for _ in range(n):
                self.steps_done += 1
                if self._step() is False:
                    break
            self._refresh()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the worker ends; re-raise an error it hit."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"training did not finish within {timeout} s")
        if self.error is not None:
            raise self.error

    def _loop(self) -> None:
        try:
            self._train()
        except BaseException as exc:  # shown by the panel and re-raised by wait()
            self.error = exc
            self._on_state(f"error: {type(exc).__name__}: {exc}")
            return
        self._on_state("paused" if self._pause.is_set() else "finished")

    def _train(self) -> None:
        last = 0.0
        try:
            while not self._pause.is_set():
                with self._lock:  # held per step only, so the kernel can act between steps
                    self._apply_pending()
                    self.steps_done += 1
                    more = self._step()
                    now = time.monotonic()
                    if now - last >= self._period or more is False:
                        self._refresh()
                        last = now
                if more is False:
                    break
        finally:
            with self._pending_lock:
                self._worker_takes_changes = False
            with self._lock:  # changes queued during the last step still apply
                self._apply_pending()
        with self._lock:
            self._refresh()


class TrainStopReset:
    """What the Train / Stop / Reset panels share (notebooks 01 and 02).

    Train runs ``steps`` more training steps in the background and measures every
    ``eval_every`` steps; Stop pauses; Reset (in the subclass) builds fresh models.
    A subclass defines ``reset()``, ``step_count``, ``advance()`` (one training step),
    ``_measure()`` and ``_refresh()``, and calls :meth:`_controls` and :meth:`_restart`.
    """

    steps: int
    eval_every: int
    status: "object"
    runner: LiveRunner

    def _controls(self):
        """The Train, Stop and Reset buttons (wired) and the status line."""
        import ipywidgets as W
        self.train_button = W.Button(description="Train", button_style="success", icon="play")
        self.stop_button = W.Button(description="Stop", icon="pause")
        self.reset_button = W.Button(description="Reset", icon="refresh")
        self.status = W.HTML()
        self.train_button.on_click(lambda _: self.train())
        self.stop_button.on_click(lambda _: self.stop())
        self.reset_button.on_click(lambda _: self.reset())
        return W.HBox([self.train_button, self.stop_button, self.reset_button])

    def _restart(self) -> None:
        """Pause a running worker and start a fresh runner (at the start of ``reset``)."""
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.pause()
        self.runner = LiveRunner(self._step, self._refresh, on_state=self._show_state)
        self._target = 0

    def _ipython_display_(self):
        from IPython.display import display
        sync_figure_state([self.figure])   # traces drawn by reset() before display must show too
        display(self.widget)

    def train(self) -> None:
        """Train in the background until ``steps`` more steps are done (or Stop)."""
        self._target = self.step_count + self.steps
        self.runner.play()

    def stop(self) -> None:
        self.runner.pause()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the background training ends (for scripts and tests)."""
        self.runner.wait(timeout)

    def _step(self) -> bool:
        self.advance()
        if self.step_count % self.eval_every == 0:
            self._measure()
        return self.step_count < self._target

    def _show_state(self, state: str) -> None:
        if state.startswith("error"):
            self.status.value = f"<b style='color:#b00'>{state}</b>"
