"""Wall time of :func:`mtlkit.compare.compare` run by run in this process and fanned out through joblib.

The workload is notebook 07's comparison: eight balancers and the single-task
baselines on three unrelated regression tasks (HardSharing MLP 20 -> 32 -> 16),
seeds 0..S-1, each run ``--steps`` Adam steps. The same call runs with ``n_jobs=1``
(sequential), then with a local process pool of 1, 2, ... workers, and, with
``--dask``, on a Dask LocalCluster of as many workers (loopback only). Every
fanned-out table must equal the sequential one number for number; the script
stops with an error if not.

    python benchmarks/compare_parallel.py                  # workers 1..cores, 3 seeds
    python benchmarks/compare_parallel.py --seeds 4 --dask

The first fan-out of a session pays for starting the workers (each imports torch);
the times below are of a second call, with the pool already up, and the start-up
is printed on its own.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mtlkit import HardSharing  # noqa: E402
from mtlkit.compare import compare  # noqa: E402
from mtlkit.experiments.transfer import TransferSetup  # noqa: E402

METHODS = ["equal", "pcgrad", "graddrop", "gradvac", "cagrad", "imtl_g", "aligned_mtl", "upgrad"]
SETUP = TransferSetup()


def three_tasks(seed: int):
    return SETUP.data(0.0, seed, num_tasks=3)


def model(tasks):
    return HardSharing.mlp(tasks, SETUP.dim, (32, 16))


def timed(seeds: int, steps: int, n_jobs: int | None):
    start = time.perf_counter()
    result = compare(METHODS, model, three_tasks, seeds=tuple(range(seeds)), steps=steps, lr=1e-2, batch_size=32,
                     device="cpu", n_jobs=n_jobs)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--dask", action="store_true", help="also run on a Dask LocalCluster")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cores = os.cpu_count() or 1
    runs = args.seeds * (len(METHODS) + 1)
    print(f"compare(): {len(METHODS)} methods + baselines x {args.seeds} seeds = {runs} runs of {args.steps} steps; "
          f"{cores} CPU cores, 1 torch thread per run, torch {torch.__version__}")
    base_time, base = timed(args.seeds, args.steps, 1)
    print(f"| workers | backend | wall (s) | speed-up |\n|---:|---|---:|---:|\n| 1 | sequential | {base_time:.1f} | 1.00 |")
    for workers in range(2, cores + 1):
        first, _ = timed(args.seeds, args.steps, workers)
        wall, result = timed(args.seeds, args.steps, workers)
        if result.table(all_metrics=True) != base.table(all_metrics=True):
            raise SystemExit(f"the {workers}-worker table differs from the sequential one")
        print(f"| {workers} | joblib loky | {wall:.1f} | {base_time / wall:.2f} |  (first call, starting the pool: "
              f"{first:.1f} s)")
    if args.dask:
        import joblib
        from distributed import Client, LocalCluster
        with LocalCluster(n_workers=cores, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster, \
                Client(cluster), joblib.parallel_config(backend="dask"):
            first, _ = timed(args.seeds, args.steps, None)
            wall, result = timed(args.seeds, args.steps, None)
        if result.table(all_metrics=True) != base.table(all_metrics=True):
            raise SystemExit("the Dask table differs from the sequential one")
        print(f"| {cores} | Dask LocalCluster | {wall:.1f} | {base_time / wall:.2f} |  (first call: {first:.1f} s)")
    print("every fanned-out table equals the sequential one, number for number")


if __name__ == "__main__":
    main()
