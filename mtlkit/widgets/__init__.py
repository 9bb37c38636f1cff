"""Widgets and live plots. Nothing else in mtlkit imports this package."""
from .live import LiveRunner
from .panel import TrainingPanel
from .style import METHOD_COLORS, TASK_COLORS, method_color, task_color

__all__ = ["LiveRunner", "TrainingPanel", "METHOD_COLORS", "TASK_COLORS", "method_color", "task_color"]
