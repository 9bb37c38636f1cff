"""A notebook's lessons as checks that hold on the numbers it just computed, and on other seeds.

In a notebook::

    from mtlkit.experiments.lessons import lesson, seed
    base = seed(0)                     # the notebook's seed, unless a seed sweep sets another
    ...
    lesson("sharing helps when the tasks are the same function (rho = 1)", gain > 5, gain=gain)

``lesson`` raises an AssertionError naming the lesson and its numbers when the claim
is false. Under a seed sweep (``benchmarks/lessons.py``) the environment sets
``MTLKIT_SEED`` (read by :func:`seed`) and ``MTLKIT_LESSONS`` (a file): each lesson is
then appended to that file as one JSON line (holds or not, with its numbers) and the
notebook goes on, so one run reports every lesson of the notebook for that seed.
"""
from __future__ import annotations

import json
import os

SEED_VARIABLE = "MTLKIT_SEED"
RECORD_VARIABLE = "MTLKIT_LESSONS"


def seed(default: int = 0) -> int:
    """The notebook's base seed: ``$MTLKIT_SEED`` under a seed sweep, else ``default``."""
    value = os.environ.get(SEED_VARIABLE)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{SEED_VARIABLE} must be an integer seed, got {value!r}") from None


def lesson(claim: str, holds: bool, **values: float) -> None:
    """Check one claim of a lesson; ``values`` are the key numbers behind it (reported either way)."""
    numbers = {k: float(v) for k, v in values.items()}
    path = os.environ.get(RECORD_VARIABLE)
    if path:
        record = {"claim": claim, "holds": bool(holds), "values": numbers,
                  "seed": os.environ.get(SEED_VARIABLE), "notebook": os.environ.get("MTLKIT_NOTEBOOK")}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return
    if not holds:
        detail = ", ".join(f"{k} = {v:.4g}" for k, v in numbers.items())
        raise AssertionError(f"lesson does not hold: {claim}" + (f" ({detail})" if detail else ""))
