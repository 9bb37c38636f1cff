"""Rerun every lesson a notebook asserts on other seeds, and print a table: lesson x seed.

Each notebook reads its seed through ``mtlkit.experiments.lessons.seed`` and states its
lessons through ``lesson(...)``. Here every notebook runs top to bottom once per seed
(a fresh kernel each time) with ``MTLKIT_SEED`` set and ``MTLKIT_LESSONS`` pointing at
a record file, so a failing lesson is recorded instead of stopping the run.

    python benchmarks/lessons.py                         # every notebook, seeds 1..20, quick mode
    python benchmarks/lessons.py --full --seeds 1-5      # student mode (no MTLKIT_QUICK), 5 seeds
    python benchmarks/lessons.py notebooks/01_what_is_mtl.ipynb --seeds 1-20 --jobs 2

A lesson stands when it holds on at least 18 of 20 seeds (``--need`` sets the
fraction), or, for a claim about an average over seeds inside the notebook, when that
average excludes the opposite conclusion (the notebook's own lesson says so).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_seeds(text: str) -> list[int]:
    """'1-20' or '3,5,8' -> a list of seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    return seeds


def execute_notebook(path: str | Path, env: dict[str, str], quick: bool, timeout: int) -> tuple[float, str | None]:
    """Run All of one notebook in a fresh kernel with ``env`` set (and quick mode or not).

    Returns the wall seconds and the error that stopped the run (None if it ran to the end).
    """
    import nbformat
    from nbclient import NotebookClient

    if quick:
        env = {**env, "MTLKIT_QUICK": "1"}
    else:
        os.environ.pop("MTLKIT_QUICK", None)
    os.environ.update(env)
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(Path(path).parent)}}).execute()
        error = None
    except Exception as e:  # report the failed cell and let the caller go on with the next run
        text = str(e).strip()
        error = f"{type(e).__name__}: {text.splitlines()[-1] if text else ''}"
    return time.perf_counter() - start, error


def run_notebook(path: str, seed: int, quick: bool, timeout: int) -> tuple[str, int, list[dict], str | None, float]:
    """Execute one notebook with one seed; returns its lesson records and the error, if any."""
    with tempfile.NamedTemporaryFile("w+", suffix=".jsonl", delete=False) as f:
        record = f.name
    env = {"MTLKIT_SEED": str(seed), "MTLKIT_LESSONS": record, "MTLKIT_NOTEBOOK": Path(path).stem,
           "OMP_NUM_THREADS": "1"}
    seconds, error = execute_notebook(path, env, quick, timeout)
    lines = Path(record).read_text().splitlines()
    Path(record).unlink()
    return path, seed, [json.loads(line) for line in lines], error, seconds


def table(results: list[tuple[str, int, list[dict], str | None, float]], need: float) -> str:
    """Markdown: one row per lesson, one column per seed (✓ / ✗ with the first key number), and a verdict."""
    seeds = sorted({seed for _, seed, *_ in results})
    cells: dict[tuple[str, str], dict[int, str]] = defaultdict(dict)
    held: dict[tuple[str, str], list[bool]] = defaultdict(list)
    errors = []
    for path, seed, records, error, _ in results:
        if error:
            errors.append(f"- {Path(path).stem}, seed {seed}: {error}")
        for r in records:
            key = (Path(path).stem, r["claim"])
            first = next(iter(r["values"].items()), None)
            number = f" {first[0]}={first[1]:.3g}" if first else ""
            cells[key][seed] = ("✓" if r["holds"] else "✗") + number
            held[key].append(r["holds"])
    lines = ["| notebook | lesson | holds | verdict | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---|---|---|---|" + "---|" * len(seeds)]
    for key in sorted(cells):
        n, k = sum(held[key]), len(held[key])
        verdict = "stands" if n >= need * k else "FALLS SHORT"
        row = " | ".join(cells[key].get(s, "–") for s in seeds)
        lines.append(f"| {key[0]} | {key[1]} | {n}/{k} | {verdict} | {row} |")
    if errors:
        lines += ["", "Runs that stopped on an error (their later lessons are missing):", *errors]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to run (default: every numbered notebook)")
    parser.add_argument("--seeds", default="1-20", help="seeds, e.g. 1-20 or 3,5,8 (default 1-20)")
    parser.add_argument("--full", action="store_true", help="student mode: do not set MTLKIT_QUICK")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at once (one core each)")
    parser.add_argument("--need", type=float, default=0.9, help="fraction of seeds a lesson must hold on")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per cell")
    args = parser.parse_args()
    paths = args.notebooks or sorted(str(p) for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    jobs = [(p, s) for p in paths for s in parse_seeds(args.seeds)]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_notebook, p, s, not args.full, args.timeout) for p, s in jobs]
        results = []
        for i, fut in enumerate(futures, 1):
            results.append(fut.result())
            path, seed, records, error, seconds = results[-1]
            print(f"[{i}/{len(jobs)}] {Path(path).stem} seed {seed}: {len(records)} lessons, "
                  f"{sum(not r['holds'] for r in records)} false, {seconds:.0f} s" + (f", {error}" if error else ""),
                  file=sys.stderr, flush=True)
    mode = "student mode" if args.full else "quick mode"
    print(f"Lessons over seeds {args.seeds} ({mode}); {time.perf_counter() - start:.0f} s in all.\n")
    print(table(results, args.need))


if __name__ == "__main__":
    main()
