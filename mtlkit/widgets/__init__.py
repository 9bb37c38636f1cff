"""Widgets and live plots. Nothing else in mtlkit imports this package."""
from .explorer import ToyExplorer, draw_landscape
from .live import LiveRunner, sync_figure_state
from .panel import TrainingPanel
from .style import METHOD_COLORS, TASK_COLORS, method_color, task_color

__all__ = ["LiveRunner", "ToyExplorer", "TrainingPanel", "METHOD_COLORS", "TASK_COLORS", "draw_landscape",
           "method_color", "sync_figure_state", "task_color"]
