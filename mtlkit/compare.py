"""Compare balancers over several seeds in one call: mean ± std of every test metric and of Δm%.

Kurin et al. ("In Defense of the Unitary Scalarization for Deep Multi-Task
Learning", NeurIPS 2022, arXiv 2201.04122) and Xin et al. ("Do Current
Multi-Task Optimization Methods in Deep Learning Even Help?", NeurIPS 2022,
arXiv 2209.11379) found that many reported gains over equal weighting shrink
or vanish once the spread over random seeds is reported. So :func:`compare`
never returns a number without its spread.

The design is paired: at seed s every method (and every single-task baseline)
starts from the same initial model, ``make_model`` called right after
``seed_everything(s)``, and sees the same batches (``Trainer(seed=s)``). For
method m and seed s,

    scores_{m,s} = test metrics after training,  b_s = single-task baselines at seed s
    Δm_{m,s} = (1/N) Σ_{i,k} (-1)^{l_ik} (M_{m,s,ik} - M_{b_s,ik}) / M_{b_s,ik} × 100   (mtlkit.metrics.delta_m)

and the result reports, over the seeds, the mean and the sample standard
deviation (ddof = 1; 0.0 for a single seed, where there is no spread to estimate).

The runs are independent, so :func:`compare` hands them to joblib: on the CPU a
local process pool (one worker per core) by default, or whatever backend a
``joblib.parallel_config`` around the call names, e.g. a Dask cluster::

    with joblib.parallel_config(backend="dask"):   # after distributed.Client(...)
        result = compare(...)

Every run seeds itself and uses the caller's number of torch threads, so the table
is the same, number for number, as the sequential run's (``n_jobs=1``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, NamedTuple, Sequence, Union

import joblib
import torch
from tqdm.auto import tqdm

from .balancers import BALANCERS, make_balancer
from .config import default_device, seed_everything
from .data.base import MultiTaskDataset
from .metrics import Scores, delta_m, per_task_delta
from .models.base import MultiTaskModel
from .tasks import TaskSet
from .train import Callback, Trainer, fit_single_task_baselines

#: A method: a balancer name, or (name, keyword arguments for ``make_balancer``).
MethodSpec = Union[str, tuple[str, Mapping[str, object]]]
DataPair = tuple[MultiTaskDataset, MultiTaskDataset]
BASELINE = "single-task"


class MeanStd(NamedTuple):
    """Mean and sample standard deviation over seeds; ``values`` holds one number per seed."""

    mean: float
    std: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> "MeanStd":
        values = tuple(float(v) for v in values)
        n = len(values)
        mean = sum(values) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
        return cls(mean, std, values)

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.std:.2g}"


@dataclass
class Comparison:
    """What :func:`compare` returns: per-seed test scores of every method and of the baselines.

    ``scores[label][k]`` and ``baselines[k]`` are the test scores (task -> metric
    -> value) at ``seeds[k]``; ``baselines`` is None when they were not trained.
    ``trainers[label][k]`` are kept only with ``compare(keep_trainers=True)``.
    """

    tasks: TaskSet
    seeds: tuple[int, ...]
    balancers: dict[str, str]
    scores: dict[str, list[Scores]]
    baselines: list[Scores] | None = None
    trainers: dict[str, list[Trainer]] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        """The method labels, in the order given to :func:`compare`."""
        return list(self.scores)

    def _runs(self, label: str) -> list[Scores]:
        if label == BASELINE and self.baselines is not None:
            return self.baselines
        if label not in self.scores:
            known = self.methods + ([BASELINE] if self.baselines is not None else [])
            raise KeyError(f"no method {label!r} in this comparison; known: {', '.join(known)}")
        return self.scores[label]

    def _baselines(self) -> list[Scores]:
        if self.baselines is None:
            raise ValueError("this comparison has no single-task baselines (compare(..., baselines=False)), "
                             "so it has no Δm%")
        return self.baselines

    def metric(self, label: str, task: str, metric: str) -> MeanStd:
        """Mean ± std over seeds of one test metric of one task ("single-task" for the baselines)."""
        self.tasks[task]
        runs = self._runs(label)
        if metric not in runs[0][task]:
            raise KeyError(f"task {task!r} has no metric {metric!r}; known: {', '.join(runs[0][task])}")
        return MeanStd.of([run[task][metric] for run in runs])

    def delta_m(self, label: str) -> MeanStd:
        """Δm% against the single-task baselines of the same seed, mean ± std over seeds."""
        return MeanStd.of([delta_m(run, base, self.tasks) for run, base in zip(self._runs(label), self._baselines())])

    def per_task_delta(self, label: str) -> dict[str, MeanStd]:
        """Each task's Δ% against its baseline (averaged over its metrics), mean ± std over seeds."""
        per_seed = [per_task_delta(run, base, self.tasks) for run, base in zip(self._runs(label), self._baselines())]
        return {name: MeanStd.of([d[name] for d in per_seed]) for name in self.tasks}

    def gap(self, label: str, reference: str = "equal") -> MeanStd:
        """Paired difference Δm(label) − Δm(reference), seed by seed: > 0 where ``label`` did better."""
        a, b = self.delta_m(label).values, self.delta_m(reference).values
        return MeanStd.of([x - y for x, y in zip(a, b)])

    def _columns(self, all_metrics: bool) -> list[tuple[str, str]]:
        return [(name, m.name) for name in self.tasks
                for m in (self.tasks[name].metrics if all_metrics else self.tasks[name].metrics[:1])]

    def rows(self, all_metrics: bool = True) -> list[dict[str, object]]:
        """One flat dict per method (the baselines first, as "single-task"): means and stds as floats."""
        labels = ([BASELINE] if self.baselines is not None else []) + self.methods
        out = []
        for label in labels:
            row: dict[str, object] = {"method": label, "seeds": len(self.seeds)}
            if self.baselines is not None:
                d = self.delta_m(label)
                row["delta_m"], row["delta_m_std"] = d.mean, d.std
            for task, metric in self._columns(all_metrics):
                s = self.metric(label, task, metric)
                row[f"{task} {metric}"], row[f"{task} {metric} std"] = s.mean, s.std
            out.append(row)
        return out

    def table(self, all_metrics: bool = False) -> str:
        """A plain-text table: one line per method, "mean ± std" over seeds for Δm% and each task's metric.

        By default each task shows its primary metric; ``all_metrics=True`` shows every metric.
        """
        labels = ([BASELINE] if self.baselines is not None else []) + self.methods
        header = ["method"] + (["Δm% (↑)"] if self.baselines is not None else [])
        columns = self._columns(all_metrics)
        header += [f"{task} {metric} ({'↑' if self._higher(task, metric) else '↓'})" for task, metric in columns]
        lines = []
        for label in labels:
            cells = [label] + ([str(self.delta_m(label))] if self.baselines is not None else [])
            cells += [str(self.metric(label, task, metric)) for task, metric in columns]
            lines.append(cells)
        widths = [max(len(r[c]) for r in [header, *lines]) for c in range(len(header))]
        fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        title = f"mean ± std over {len(self.seeds)} seed(s) {list(self.seeds)}"
        return "\n".join([title, fmt(header), fmt(["-" * w for w in widths]), *map(fmt, lines)])

    def _higher(self, task: str, metric: str) -> bool:
        return next(m.higher_is_better for m in self.tasks[task].metrics if m.name == metric)

    def __str__(self) -> str:
        return self.table()


def _method_specs(methods: Sequence[str] | Mapping[str, MethodSpec]) -> dict[str, tuple[str, dict]]:
    """label -> (balancer name, kwargs), checked: every name registered, every kwargs accepted."""
    if isinstance(methods, str):
        raise TypeError(f"methods must be a list of balancer names or a mapping label -> spec, got the string "
                        f"{methods!r}; did you mean [{methods!r}]?")
    items = list(methods.items()) if isinstance(methods, Mapping) else [(m, m) for m in methods]
    if not items:
        raise ValueError(f"no methods to compare; give balancer names, known: {', '.join(BALANCERS)}")
    specs: dict[str, tuple[str, dict]] = {}
    for label, spec in items:
        name, kwargs = (spec, {}) if isinstance(spec, str) else (spec[0], dict(spec[1]))
        BALANCERS[name]  # unknown names raise a KeyError listing the known ones
        if label in specs or label == BASELINE:
            raise ValueError(f"method label {label!r} is used twice or is reserved for the baselines")
        try:
            make_balancer(name, **kwargs)
        except TypeError as err:
            raise TypeError(f"method {label!r}: balancer {name!r} does not accept {kwargs}: {err}") from None
        specs[label] = (name, kwargs)
    return specs


def _check_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed, e.g. seeds=(0, 1, 2)")
    bad = [s for s in seeds if not isinstance(s, int) or isinstance(s, bool) or s < 0]
    if bad:
        raise ValueError(f"seeds must be non-negative ints, got {bad}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct (a repeated seed repeats the same run), got {list(seeds)}")
    return seeds


def _split(data: DataPair | Callable[[int], DataPair], seed: int) -> DataPair:
    pair = data(seed) if callable(data) else data
    if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(d, MultiTaskDataset) for d in pair)):
        raise TypeError("data must be a (train, test) pair of MultiTaskDataset, or a function seed -> such a pair")
    train, test = pair
    if train.tasks.names != test.tasks.names:
        raise ValueError(f"train and test sets have different tasks: {train.tasks.names} vs {test.tasks.names}")
    return train, test


def _train_run(job: tuple, make_model: Callable[[TaskSet], MultiTaskModel], setup: dict, loop: dict,
               threads: int, callbacks: Callable[[str, int], Iterable[Callback]] | None,
               keep_trainer: bool) -> tuple[Scores, Trainer | None]:
    """One run of :func:`compare`: a method (or the baselines, ``name`` None) at one seed; its test scores."""
    label, name, kwargs, seed, (train, test) = job
    torch.set_num_threads(threads)  # the caller's: a worker's sums then round exactly as the caller's would
    if name is None:
        return fit_single_task_baselines(make_model, train, test, seed=seed, **setup, **loop), None
    seed_everything(seed)
    model = make_model(train.tasks)  # the same initial model for every method at this seed
    extra = list(callbacks(label, seed)) if callbacks is not None else []
    trainer = Trainer(model, make_balancer(name, **kwargs), seed=seed, callbacks=extra, **setup)
    trainer.fit(train, **loop)
    return trainer.evaluate(test), trainer if keep_trainer else None


def _workers(n_jobs: int | None, stays_here: bool, device) -> int:
    """joblib's n_jobs: as given, or by default -1 (every core, or the cluster of a ``parallel_config``)
    on the CPU and 1 (this process) on a GPU or when the runs' objects must stay here."""
    if n_jobs is None:
        return 1 if stays_here or torch.device(device or default_device()).type != "cpu" else -1
    if not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive int, -1 (every core) or None (the default), got {n_jobs!r}")
    if n_jobs != 1 and stays_here:
        raise ValueError("callbacks and keep_trainers need every run in this process (a worker's objects do not "
                         "come back): use n_jobs=1")
    return n_jobs


def compare(methods: Sequence[str] | Mapping[str, MethodSpec], make_model: Callable[[TaskSet], MultiTaskModel],
            data: DataPair | Callable[[int], DataPair], seeds: Sequence[int] = (0, 1, 2), steps: int | None = None,
            epochs: int | None = None, lr: float = 1e-3, batch_size: int = 64, optimizer: str = "adam",
            weight_decay: float = 0.0, device=None, baselines: bool = True,
            callbacks: Callable[[str, int], Iterable[Callback]] | None = None,
            keep_trainers: bool = False, n_jobs: int | None = None, progress: bool = False) -> Comparison:
    """Train every method at every seed, and single-task baselines per seed; see the module docstring.

    ``methods``: balancer names (``["equal", "famo"]``) or a mapping label ->
    name or (name, kwargs) (``{"CAGrad c=0.8": ("cagrad", {"c": 0.8})}``).
    ``make_model(tasks)`` builds a fresh model. ``data`` is a (train, test) pair,
    or a function seed -> (train, test) to redraw the data per seed. Give exactly
    one of ``steps`` and ``epochs``; lr, batch_size, optimizer, weight_decay and
    device go to every :class:`Trainer`, baselines included. ``callbacks(label,
    seed)``, if given, returns the callbacks of that method's run at that seed
    (e.g. a :class:`~mtlkit.monitor.ConflictMonitor` you keep a reference to).

    ``n_jobs``: how many runs at once through joblib (-1: every core). The default
    uses one worker per CPU core on the CPU, and runs in this process on a GPU or
    when ``callbacks`` or ``keep_trainers`` need the runs' objects here.
    ``progress`` shows a bar over all runs.
    """
    specs = _method_specs(methods)
    seeds = _check_seeds(seeds)
    if (steps is None) == (epochs is None):
        raise ValueError("give exactly one of steps or epochs")
    if (steps if steps is not None else epochs) < 1:
        raise ValueError(f"steps/epochs must be >= 1, got steps={steps}, epochs={epochs}")
    setup = dict(lr=lr, batch_size=batch_size, optimizer=optimizer, weight_decay=weight_decay, device=device)
    loop = {"steps": steps} if steps is not None else {"epochs": epochs}
    jobs, tasks = [], None
    for seed in seeds:
        pair = _split(data, seed)
        if tasks is None:
            tasks = pair[0].tasks
        elif pair[0].tasks.names != tasks.names:
            raise ValueError(f"data for seed {seed} has tasks {pair[0].tasks.names}, earlier seeds had {tasks.names}")
        jobs += [(label, name, kwargs, seed, pair) for label, (name, kwargs) in specs.items()]
        if baselines:
            jobs.append((BASELINE, None, {}, seed, pair))
    workers = _workers(n_jobs, callbacks is not None or keep_trainers, device)
    run = joblib.delayed(_train_run)
    done = joblib.Parallel(n_jobs=workers, return_as="generator")(
        run(job, make_model, setup, loop, torch.get_num_threads(), callbacks, keep_trainers) for job in jobs)
    results = list(tqdm(done, total=len(jobs), desc="compare: runs", disable=not progress))
    scores: dict[str, list[Scores]] = {label: [] for label in specs}
    trainers: dict[str, list[Trainer]] = {label: [] for label in specs} if keep_trainers else {}
    base: list[Scores] = []
    for (label, _, _, _, _), (score, trainer) in zip(jobs, results):  # jobs are in seed order
        (base if label == BASELINE else scores[label]).append(score)
        if keep_trainers and label != BASELINE:
            trainers[label].append(trainer)
    return Comparison(tasks, seeds, {label: name for label, (name, _) in specs.items()}, scores,
                      base if baselines else None, trainers)


__all__ = ["BASELINE", "Comparison", "MeanStd", "MethodSpec", "compare"]
