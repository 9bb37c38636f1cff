"""One look for the whole workbook: a colour per task and per method, shared axis titles.

Tasks are coloured by their position in their TaskSet (the first task is always
blue), so "t1", "left" and "f1" share a colour in every notebook; methods keep
one colour each across every plot.
"""
from __future__ import annotations

from typing import Sequence

# Okabe-Ito palette: distinguishable with colour-blindness, readable on white.
TASK_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
_METHOD_ORDER = ("equal", "fixed", "uncertainty", "gradnorm", "dwa", "dtp", "gls", "rlw", "famo", "mgda", "mgda_ub",
                 "pcgrad", "graddrop", "gradvac", "cagrad", "imtl_g", "nash_mtl", "aligned_mtl", "upgrad")
_METHOD_PALETTE = ("#444444", "#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                   "#e377c2", "#17becf", "#0e6b78", "#bcbd22", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
                   "#c5b0d5", "#c49c94", "#393b79")
METHOD_COLORS = dict(zip(_METHOD_ORDER, _METHOD_PALETTE))

STEP_AXIS = "training step"
LOSS_AXIS = "loss (per task)"


def task_color(task_names: Sequence[str], name: str) -> str:
    """The colour of task ``name``: fixed by its index among ``task_names``."""
    return TASK_COLORS[list(task_names).index(name) % len(TASK_COLORS)]


def method_color(name: str) -> str:
    """The colour of a balancer or architecture name; unknown names get a stable fallback."""
    if name in METHOD_COLORS:
        return METHOD_COLORS[name]
    return _METHOD_PALETTE[sum(map(ord, name)) % len(_METHOD_PALETTE)]
