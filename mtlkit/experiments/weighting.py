"""The experiment of notebook 06: is equal weighting hard to beat when the tasks' loss scales differ?

Every method gets the same small learning-rate sweep. At each seed, each method keeps
the learning rate with the lowest validation score on that seed's validation split, and
its test score there is compared with equal weighting's (at equal weighting's own best
rate) seed by seed. The comparison is paired: at one seed every method and every
learning rate starts from the same initial model, on the same data, with the same
batch order (:func:`mtlkit.compare.compare`).

The score of a run is the mean relative test MSE over the T tasks,

    score = (1/T) Σ_i MSE_i / mean(y_i²),

task i's MSE divided by that of always predicting 0 (1: learned nothing), so that a
task whose targets are 100 times larger does not count 10⁴ times more. Equal weighting
minimises Σ_i MSE_i instead, which the largest-scale task dominates: the score asks a
different question from the one equal weighting answers, and says so.

Kurin et al., "In Defense of the Unitary Scalarization for Deep Multi-Task Learning",
NeurIPS 2022, arXiv 2201.04122, find that equal weighting with the regularisation and
stabilisation of single-task learning matches or beats specialised multi-task
optimisers on their supervised and reinforcement-learning benchmarks; the learning-rate
sweep for every method here is a toy-sized version of giving each method the same care.

Lesson code: it builds on the core (data, compare); the core never imports it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from ..compare import MeanStd, MethodSpec, compare
from ..data.base import MultiTaskDataset
from ..data.gradnorm_toy import gradnorm_toy
from ..models.base import MultiTaskModel
from ..tasks import TaskSet
from ..train import Trainer

Split = tuple[MultiTaskDataset, MultiTaskDataset, MultiTaskDataset]
TaskScores = dict[str, float]


def scale_split(seed: int, sigmas: Sequence[float] = (1.0, 10.0, 100.0), sizes: tuple[int, int, int] = (1000, 500, 500),
                in_dim: int = 20, out_dim: int = 10) -> Split:
    """Train, validation and test sets of the GradNorm toy (:func:`mtlkit.data.gradnorm_toy`), drawn at ``seed``."""
    data = gradnorm_toy(sum(sizes), sigmas=sigmas, in_dim=in_dim, out_dim=out_dim, seed=seed)
    return data.split(*sizes, seed=seed)


def relative_mse(trainer: Trainer, data: MultiTaskDataset) -> TaskScores:
    """Task -> MSE / mean(y²) on ``data``: the error relative to always predicting 0."""
    scores = trainer.evaluate(data)
    return {name: scores[name]["mse"] / float((y ** 2).mean()) for name, y in data.targets.items()}


def mean_score(scores: TaskScores) -> float:
    """The mean relative MSE over the tasks (lower is better)."""
    return sum(scores.values()) / len(scores)


@dataclass
class TunedComparison:
    """What :func:`tuned_comparison` returns: per method, learning rate and seed, relative MSE on val and test.

    ``val[method][lr][k]`` and ``test[method][lr][k]`` are task -> relative MSE at ``seeds[k]``.
    """

    tasks: TaskSet
    seeds: tuple[int, ...]
    lrs: tuple[float, ...]
    val: dict[str, dict[float, list[TaskScores]]]
    test: dict[str, dict[float, list[TaskScores]]]

    @property
    def methods(self) -> list[str]:
        return list(self.val)

    def _check(self, method: str) -> None:
        if method not in self.val:
            raise KeyError(f"no method {method!r} in this comparison; known: {', '.join(self.methods)}")

    def val_score(self, method: str, lr: float) -> MeanStd:
        """Mean relative validation MSE of ``method`` at ``lr``, mean ± std over the seeds."""
        self._check(method)
        return MeanStd.of([mean_score(s) for s in self.val[method][lr]])

    def best_lrs(self, method: str) -> tuple[float, ...]:
        """Per seed, the learning rate with the lowest validation score on that seed."""
        self._check(method)
        val = self.val[method]
        return tuple(min(self.lrs, key=lambda lr: mean_score(val[lr][k])) for k in range(len(self.seeds)))

    def _tuned(self, method: str) -> list[TaskScores]:
        return [self.test[method][lr][k] for k, lr in enumerate(self.best_lrs(method))]

    def score(self, method: str) -> MeanStd:
        """Mean relative test MSE at each seed's best learning rate, mean ± std over the seeds."""
        return MeanStd.of([mean_score(s) for s in self._tuned(method)])

    def per_task(self, method: str) -> dict[str, MeanStd]:
        """Each task's relative test MSE at each seed's best learning rate, mean ± std over the seeds."""
        runs = self._tuned(method)
        return {name: MeanStd.of([run[name] for run in runs]) for name in self.tasks}

    def gap(self, method: str, reference: str = "equal") -> MeanStd:
        """Paired score(method) − score(reference) per seed, each tuned (< 0: ``method`` did better)."""
        return MeanStd.of([a - b for a, b in zip(self.score(method).values, self.score(reference).values)])

    def table(self, reference: str = "equal") -> str:
        """One line per method: best rate per seed, test score, per-task scores (mean ± std), gap to ``reference``."""
        header = ["method", "best lr per seed", "mean rel. MSE", *self.tasks, f"gap to {reference}"]
        lines = [[m, " ".join(f"{lr:g}" for lr in self.best_lrs(m)), str(self.score(m)),
                  *(str(s) for s in self.per_task(m).values()),
                  "–" if m == reference else str(self.gap(m, reference))] for m in self.methods]
        widths = [max(len(row[c]) for row in [header, *lines]) for c in range(len(header))]
        fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        title = f"relative test MSE (lower is better), mean ± std over {len(self.seeds)} seeds {list(self.seeds)}"
        return "\n".join([title, fmt(header), fmt(["-" * w for w in widths]), *map(fmt, lines)])


def tuned_comparison(methods: Sequence[str] | Mapping[str, MethodSpec],
                     make_model: Callable[[TaskSet], MultiTaskModel], splits: Callable[[int], Split],
                     lrs: Sequence[float], seeds: Sequence[int], steps: int, batch_size: int = 64,
                     device=None) -> TunedComparison:
    """Train every method at every learning rate and seed (:func:`compare`); score on validation and test.

    ``methods`` as in :func:`compare` (names, or label -> spec); ``splits(seed)`` returns
    (train, val, test) and is called once per seed.
    """
    if not lrs:
        raise ValueError("give at least one learning rate to sweep")
    data = {seed: splits(seed) for seed in seeds}
    labels = list(methods)
    val: dict[str, dict[float, list[TaskScores]]] = {m: {} for m in labels}
    test: dict[str, dict[float, list[TaskScores]]] = {m: {} for m in labels}
    for lr in lrs:
        result = compare(methods, make_model, lambda seed: data[seed][:2], seeds=seeds, steps=steps, lr=lr,
                         batch_size=batch_size, device=device, baselines=False, keep_trainers=True)
        for m in labels:
            trainers = result.trainers[m]
            val[m][lr] = [relative_mse(t, data[s][1]) for s, t in zip(result.seeds, trainers)]
            test[m][lr] = [relative_mse(t, data[s][2]) for s, t in zip(result.seeds, trainers)]
    return TunedComparison(result.tasks, result.seeds, tuple(lrs), val, test)


__all__ = ["TunedComparison", "mean_score", "relative_mse", "scale_split", "tuned_comparison"]
