"""Run every notebook top to bottom as a student does (Run All, no quick mode) and print its time.

One notebook at a time, each in a fresh kernel, one torch thread unless ``--threads``
says otherwise; the table lists each notebook's wall time and whether it is within
the budget a student should wait (3 minutes by default).

    python benchmarks/notebook_times.py                       # every numbered notebook, student mode
    python benchmarks/notebook_times.py notebooks/04_dense_prediction.ipynb
    python benchmarks/notebook_times.py --quick               # the quick mode the tests use
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lessons import execute_notebook  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to time (default: every numbered notebook)")
    parser.add_argument("--quick", action="store_true", help="quick mode (MTLKIT_QUICK=1), as the tests run")
    parser.add_argument("--threads", type=int, default=1, help="torch / OpenMP threads (default 1)")
    parser.add_argument("--budget", type=float, default=180.0, help="seconds a notebook may take (default 180)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell before giving up")
    args = parser.parse_args()
    paths = [Path(p) for p in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    import torch
    print(f"{'quick' if args.quick else 'student'} mode; {os.cpu_count()} CPU cores, {args.threads} thread(s), "
          f"torch {torch.__version__}, {platform.machine()}, CUDA {'yes' if torch.cuda.is_available() else 'no'}\n")
    print("| notebook | wall (s) | within budget |\n|---|---:|---|")
    total, over = 0.0, []
    for path in paths:
        seconds, error = execute_notebook(path, {"OMP_NUM_THREADS": str(args.threads)}, args.quick, args.timeout)
        total += seconds
        ok = error is None and seconds <= args.budget
        if not ok:
            over.append(path.stem)
        note = f" ({error})" if error else ""
        print(f"| {path.stem} | {seconds:.0f} | {'yes' if ok else 'NO'}{note} |", flush=True)
    print(f"| total | {total:.0f} | |")
    if over:
        print(f"\nover the {args.budget:.0f} s budget or failed: {', '.join(over)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
