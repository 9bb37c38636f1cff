"""mtlkit.experiments.lessons: a false lesson stops the notebook, a seed sweep records it instead."""
import json

import pytest

from mtlkit.experiments.lessons import lesson, seed


def test_a_false_lesson_raises_with_its_claim_and_numbers(monkeypatch):
    monkeypatch.delenv("MTLKIT_LESSONS", raising=False)
    lesson("sharing helps", True, gain=3.0)
    with pytest.raises(AssertionError, match=r"lesson does not hold: sharing helps \(gain = -1.5\)"):
        lesson("sharing helps", False, gain=-1.5)


def test_under_a_seed_sweep_every_lesson_is_recorded_and_none_raises(monkeypatch, tmp_path):
    record = tmp_path / "lessons.jsonl"
    monkeypatch.setenv("MTLKIT_LESSONS", str(record))
    monkeypatch.setenv("MTLKIT_SEED", "7")
    lesson("a", True, x=1)
    lesson("b", False, y=2.5)
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(r["claim"], r["holds"], r["values"], r["seed"]) for r in rows] == [
        ("a", True, {"x": 1.0}, "7"), ("b", False, {"y": 2.5}, "7")]


def test_the_seed_comes_from_the_sweep_or_the_notebook(monkeypatch):
    monkeypatch.delenv("MTLKIT_SEED", raising=False)
    assert seed(3) == 3
    monkeypatch.setenv("MTLKIT_SEED", "12")
    assert seed(3) == 12
    monkeypatch.setenv("MTLKIT_SEED", "twelve")
    with pytest.raises(ValueError, match="MTLKIT_SEED must be an integer seed, got 'twelve'"):
        seed(3)
