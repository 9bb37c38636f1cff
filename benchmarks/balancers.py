"""Per-step cost of every balancer, relative to equal weighting, and its peak memory.

Reference model: ``HardSharing.mlp`` on ``correlated_regression(dim=100)`` with T
tasks, hidden widths (512, 512, 128), every hidden layer shared: 380,032 shared
parameters (plus T linear heads); batch 128, Adam, one fixed batch.

For T = 2, 4, 8, every registered balancer and both gradient spaces (gradient
methods: ``on="params"`` and ``on="z"``; loss weighting does not use it) we time
``Trainer.train_step`` (median over the measured steps, after warm-up) and divide
by the median of an equal-weighting run timed just before it (paired, so that
changes in machine load cancel). Peak memory is the extra memory of one step beyond
the model and optimizer state: on CUDA ``torch.cuda.max_memory_allocated`` minus the
memory before; on the CPU the peak bytes of tensors alive at once, counted at
dispatch (:class:`LiveTensorBytes`).

    python benchmarks/balancers.py            # full table, a few minutes on a laptop CPU
    python benchmarks/balancers.py --quick    # smoke run: T=2, few steps
    python benchmarks/balancers.py --grads    # per-task gradients: loop vs batched (vmap)

CPU runs use one thread unless ``--threads`` says otherwise.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import Tensor
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mtlkit as M  # noqa: E402
from mtlkit.balancers import BALANCERS, gradient_methods  # noqa: E402
from mtlkit.data import correlated_regression  # noqa: E402
from mtlkit.grads import task_gradients  # noqa: E402

WIDTHS = (512, 512, 128)
DIM = 100
BATCH = 128


def reference(T: int, seed: int = 0):
    data = correlated_regression(BATCH, 0.5, dim=DIM, num_tasks=T, seed=seed)
    M.seed_everything(seed)
    return data, M.HardSharing.mlp(data.tasks, DIM, WIDTHS)


def make(name: str, T: int, on: str | None):
    kwargs = {"weights": [1.0] * T} if name == "fixed" else {}
    if on is not None:
        kwargs["on"] = on
    return M.make_balancer(name, **kwargs)


# -- memory ---------------------------------------------------------------------
class LiveTensorBytes(TorchDispatchMode):
    """Peak bytes of the tensor storages created inside the ``with`` block and alive at once.

    Every op is seen at dispatch (forward, backward and optimizer alike); an output whose
    storage is new (not one of the op's inputs, as views and in-place ops are) is counted
    until its storage is freed. The CPU allocator keeps no peak statistics, so this is the
    CPU's counterpart of ``torch.cuda.max_memory_allocated`` minus the memory before.
    """

    def __enter__(self):
        self.live: list[tuple[StorageWeakRef, int]] = []
        self.now = self.peak = 0
        return super().__enter__()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.live = [(ref, n) for ref, n in self.live if not ref.expired() or self._free(n)]
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0] if isinstance(t, Tensor)}
        tracked = {ref.cdata for ref, _ in self.live}
        for t in tree_flatten(out)[0]:
            if not isinstance(t, Tensor) or t.untyped_storage().data_ptr() in inputs:
                continue
            ref, n = StorageWeakRef(t.untyped_storage()), t.untyped_storage().nbytes()
            if n and ref.cdata not in tracked:
                tracked.add(ref.cdata)
                self.live.append((ref, n))
                self.now += n
        self.peak = max(self.peak, self.now)
        return out

    def _free(self, nbytes: int) -> bool:
        self.now -= nbytes
        return False


def peak_step_memory(trainer: M.Trainer, x, y, device: torch.device) -> float:
    """Extra MiB at the peak of one train step, beyond what was allocated before it."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        trainer.train_step(x, y)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    with LiveTensorBytes() as mem:
        trainer.train_step(x, y)
    return mem.peak / 2 ** 20


# -- timing ---------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(name: str, T: int, on: str | None, device: torch.device, warmup: int, steps: int
               ) -> tuple[float, float]:
    """(median seconds per step, peak extra MiB of one step) on one fixed batch."""
    data, model = reference(T)
    trainer = M.Trainer(model, make(name, T, on), lr=1e-4, batch_size=BATCH, device=device)
    x, y = data.to(device)[:BATCH]
    for _ in range(warmup):
        trainer.train_step(x, y)
    times = []
    for _ in range(steps):
        _sync(device)
        t0 = time.perf_counter()
        trainer.train_step(x, y)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), peak_step_memory(trainer, x, y, device)


def balancer_table(Ts: list[int], device: torch.device, warmup: int, steps: int) -> None:
    """Each configuration is timed right after its own equal-weighting run (paired), so slow
    drifts in machine load cancel in the ratio."""
    grads = set(gradient_methods())
    names = BALANCERS.names()
    cols = [(T, on) for T in Ts for on in ("params", "z")]
    ratio: dict[tuple[str, int, str], float] = {}
    mib: dict[tuple[str, int, str], float] = {}
    base: dict[int, list[float]] = {T: [] for T in Ts}
    time_steps("equal", Ts[0], None, device, warmup, steps)  # warm up the process (allocator, kernels)
    for T in Ts:
        for name in names:
            for on in ("params", "z") if name in grads else ("params",):
                t_equal, _ = time_steps("equal", T, None, device, warmup, steps)
                t, mib[name, T, on] = time_steps(name, T, on if name in grads else None, device, warmup, steps)
                ratio[name, T, on] = t / t_equal
                base[T].append(t_equal)
    _, model = reference(Ts[0])
    shared = sum(p.numel() for p in model.shared_parameters())
    print(f"\nReference: HardSharing MLP {DIM}->{'->'.join(map(str, WIDTHS))}, {shared:,} shared parameters, "
          f"batch {BATCH}, Adam; device {device}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}; median of {steps} steps after {warmup} warm-up.")
    print("Equal weighting, ms per step (median of its paired runs): "
          + ", ".join(f"T={T}: {1e3 * statistics.median(base[T]):.2f}" for T in Ts))
    _print_table("Time per step / equal weighting's (paired)", names, cols, ratio, "{:.2f}")
    _print_table("Peak extra memory of one step beyond the model and optimizer state, MiB"
                 + (" (live tensor bytes)" if device.type == "cpu" else " (CUDA allocator)"), names, cols, mib, "{:.1f}")


def _print_table(title: str, names: list[str], cols: list[tuple[int, str]], values: dict, fmt: str) -> None:
    header = " | ".join(f"T={T} {on}" for T, on in cols)
    print(f"\n{title}\n\n| method | {header} |\n|---|" + "---:|" * len(cols))
    for name in names:
        cells = [fmt.format(values[name, T, on]) if (name, T, on) in values else "—" for T, on in cols]
        print(f"| {name} | " + " | ".join(cells) + " |")


# -- per-task gradients: loop vs batched ------------------------------------------
def grads_table(Ts: list[int], device: torch.device, reps: int) -> None:
    from mtlkit.data import multimnist

    cases = []
    for T in Ts:
        data, model = reference(T)
        cases.append((f"MLP T={T}", model.to(device), data.to(device)))
    train, _ = multimnist(BATCH, 16)
    M.seed_everything(0)
    cases.append(("LeNet T=2", M.HardSharing.lenet(train.tasks).to(device), train.to(device)))
    print(f"\nPer-task gradients G (T, P), ms per call (median of {reps}), device {device}, "
          f"{torch.get_num_threads()} threads\n")
    print("| model | on | loop | batched (vmap) | batched / loop |\n|---|---|---:|---:|---:|")
    for label, model, data in cases:
        x, y = data[:BATCH]
        for on in ("params", "z"):
            med = {}
            for batched in (False, True, False, True):  # interleaved, to share any background load
                times = []
                for _ in range(reps):
                    out = model(x)
                    losses = model.tasks.losses(out.outputs, y)
                    inputs = model.shared_parameters() if on == "params" else [out.z]
                    _sync(device)
                    t0 = time.perf_counter()
                    task_gradients(losses, inputs, batched=batched)
                    _sync(device)
                    times.append(time.perf_counter() - t0)
                med.setdefault(batched, []).extend(times)
            loop, vmap = statistics.median(med[False]) * 1e3, statistics.median(med[True]) * 1e3
            print(f"| {label} | {on} | {loop:.2f} | {vmap:.2f} | {vmap / loop:.2f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: T=2 only, few steps")
    parser.add_argument("--grads", action="store_true", help="time per-task gradients: loop vs batched")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when available)")
    parser.add_argument("--steps", type=int, default=None, help="measured steps per configuration")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch (default 1: stable on a shared machine, where spinning "
                             "OpenMP threads can slow every op tenfold)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else M.default_device()
    Ts = [2] if args.quick else [2, 4, 8]
    if not torch.cuda.is_available():
        print("CUDA is not available here: CPU numbers only.")
    if args.grads:
        grads_table(Ts, device, reps=3 if args.quick else 15)
        return
    steps = args.steps or (3 if args.quick else 15)
    balancer_table(Ts, device, warmup=1 if args.quick else 3, steps=steps)


if __name__ == "__main__":
    main()
