"""How far a mean over a few seeds can be trusted: the t confidence interval of a mean.

For n numbers x_1..x_n (one per seed, e.g. the paired gaps between two methods) with
mean m and sample standard deviation s, the interval at confidence ``level`` is

    m ± t_{(1 + level)/2, n−1} · s / √n,

with t the quantile of Student's t distribution with n − 1 degrees of freedom. With
three seeds t_{0.975, 2} = 4.30, not the 2 of "mean ± 2 standard errors": few seeds
give a wide interval, and the interval says so.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

from scipy import stats

from ..compare import MeanStd


class Interval(NamedTuple):
    """The mean of ``n`` values and its confidence interval [low, high]."""

    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3g} [{self.low:.3g}, {self.high:.3g}]"


def mean_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """The mean of ``values`` (n >= 2, one per seed) with its t confidence interval at ``level``."""
    values = [float(v) for v in values]
    n = len(values)
    if n < 2:
        raise ValueError(f"a confidence interval needs at least 2 values (seeds), got {n}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    mean, std, _ = MeanStd.of(values)  # the sample standard deviation (ddof = 1), as compare() reports it
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


__all__ = ["Interval", "mean_interval"]
