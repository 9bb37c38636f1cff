"""Per-task metrics over a whole dataset and the multi-task performance Δm%.

Δm% (Maninis et al., CVPR 2019; Vandenhende et al., TPAMI 2021) compares a
multi-task model m with single-task baselines b, over every task i and metric k:

    Δm = (1/N) Σ_{i,k} (-1)^{l_ik} (M_{m,ik} - M_{b,ik}) / M_{b,ik} × 100

with l_ik = 1 when lower is better for metric k of task i, N the number of
(task, metric) pairs. Positive Δm means the multi-task model is better.
"""
from __future__ import annotations

import math
from typing import Mapping

from .tasks import TaskSet

Scores = Mapping[str, Mapping[str, float]]  # task -> metric -> value


def relative_gain(score: float, baseline: float, higher_is_better: bool, where: str = "") -> float:
    """(-1)^l (score - baseline) / |baseline| × 100: positive when ``score`` is better."""
    score, baseline = float(score), float(baseline)
    if baseline == 0 or not math.isfinite(baseline) or not math.isfinite(score):
        raise ValueError(f"{where}: need a finite, non-zero baseline and a finite score, "
                         f"got baseline={baseline}, score={score}")
    sign = 1.0 if higher_is_better else -1.0
    return sign * (score - baseline) / abs(baseline) * 100.0


def _lookup(table: Scores, which: str, task: str, metric: str) -> float:
    if task not in table or metric not in table[task]:
        raise KeyError(f"{which} lack metric {metric!r} of task {task!r}")
    return table[task][metric]


def per_task_delta(scores: Scores, baselines: Scores, tasks: TaskSet) -> dict[str, float]:
    """Each task's Δ% averaged over its metrics (positive = better than its baseline)."""
    out = {}
    for name in tasks:
        gains = [relative_gain(_lookup(scores, "scores", name, m.name), _lookup(baselines, "baselines", name, m.name),
                               m.higher_is_better, f"task {name!r}, metric {m.name!r}")
                 for m in tasks[name].metrics]
        out[name] = sum(gains) / len(gains)
    return out


def delta_m(scores: Scores, baselines: Scores, tasks: TaskSet) -> float:
    """Δm% of ``scores`` against ``baselines``; both map task -> metric -> value."""
    n_metrics = [len(tasks[name].metrics) for name in tasks]
    per_task = per_task_delta(scores, baselines, tasks)
    return sum(per_task[name] * n for name, n in zip(tasks, n_metrics)) / sum(n_metrics)
