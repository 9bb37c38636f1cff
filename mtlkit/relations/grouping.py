"""Which tasks should share a network? Choosing groups of tasks from affinities or measured gains (survey §4.1).

A grouping picks at most k groups (subsets of the T tasks, k = the budget: how many
networks we can afford to train and run); every task is in at least one group. A
task may sit in several groups; it is *served* by the group where it does best, and
its value there is what counts (Standley et al. 2020, §3.3; Fifty et al. 2021, §3.2):

    maximise   Σ_j  max_{g ∈ S, j ∈ g}  v_j(g)    over families S of groups, |S| ≤ k, ∪S = {1..T}

v_j(g) is task j's value in group g (higher is better):

* from affinities Z (TAG, gradient cosine, task embeddings): the mean affinity onto j
  from its partners, v_j(g) = (1 / (|g| − 1)) Σ_{i ∈ g, i ≠ j} Z_{i→j}, and 0 for j alone;
* from trained groups (Standley): j's relative loss gain over its single-task network,
  measured, or estimated from pairs (:mod:`mtlkit.relations.standley`).

Overlaps can pay: with affinities, a pair {i, j} gives j the single value Z_{i→j}, at
least the mean over j's whole block when i is j's best partner, so a spare network
may go to a second, overlapping group. ``disjoint=True`` restricts the searches to
partitions (every task in exactly one group), which is what a
:class:`~mtlkit.models.branched.BranchedNetwork` trains.

Three searches return the same kind of answer, a :class:`Grouping`:

* :func:`exhaustive_search`: every family of at most k of the 2^T − 1 groups (small T);
* :func:`branch_and_bound`: the same optimum, pruning families whose best possible
  completion (every task at its best remaining group) cannot beat the incumbent;
* :func:`greedy_search`: for large T, partitions only: start from singletons, merge the
  pair of groups that helps most until at most k remain (and while merging helps), then
  move single tasks between groups while that helps. Fast, not guaranteed optimal.

T. Standley et al., "Which Tasks Should Be Learned Together in Multi-task Learning?",
ICML 2020, arXiv 1905.07553. C. Fifty et al., "Efficiently Identifying Task Groupings
for Multi-Task Learning", NeurIPS 2021, arXiv 2109.04617.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

#: v(group) -> each member's value in that group, in the group's order (higher is better).
ValueFn = Callable[[tuple[int, ...]], Sequence[float]]

#: exhaustive_search refuses to enumerate more families than this.
MAX_FAMILIES = 1_000_000
_TOL = 1e-12


class BudgetError(ValueError):
    """A budget (number of groups, of training runs, of families to enumerate) does not allow the request."""


@dataclass(frozen=True)
class Grouping:
    """The chosen groups (task indices, possibly overlapping), the group serving each task, the total value."""

    groups: tuple[tuple[int, ...], ...]
    served_by: tuple[int, ...]
    score: float

    @property
    def labels(self) -> list[int]:
        """Each task's serving group as a cluster label (for adjusted_rand_score)."""
        return list(self.served_by)

    def partition(self) -> list[tuple[int, ...]]:
        """The tasks grouped by the group that serves them: each task exactly once."""
        return [tuple(j for j, g in enumerate(self.served_by) if g == k)
                for k in sorted(set(self.served_by))]

    def named(self, names: Sequence[str]) -> list[tuple[str, ...]]:
        """:meth:`partition` with task names instead of indices."""
        return [tuple(names[j] for j in g) for g in self.partition()]


def affinity_values(Z: Tensor) -> ValueFn:
    """v_j(g) = mean_{i ∈ g, i ≠ j} Z[i, j] (0 for a task alone), for Z (T, T) with Z[i, j] = affinity i → j."""
    Z = _square(Z, "affinity matrix Z")
    A = Z.detach().double().cpu().numpy()

    def values(group: tuple[int, ...]) -> list[float]:
        if len(group) == 1:
            return [0.0]
        idx = list(group)
        sub = A[np.ix_(idx, idx)]
        return list((sub.sum(0) - np.diag(sub)) / (len(idx) - 1))
    return values


def _square(Z: Tensor, what: str) -> Tensor:
    Z = torch.as_tensor(Z)
    if Z.dim() != 2 or Z.shape[0] != Z.shape[1] or Z.shape[0] < 1:
        raise ValueError(f"{what} must be square (T, T), got shape {tuple(Z.shape)}")
    if not bool(torch.isfinite(Z).all()):
        raise ValueError(f"{what} holds NaN or inf")
    return Z


def _check_budget(num_tasks: int, max_groups: int) -> None:
    if num_tasks < 1:
        raise ValueError(f"need at least one task, got {num_tasks}")
    if not isinstance(max_groups, int) or max_groups < 1:
        raise BudgetError(f"the budget must allow at least one group (every task must be served), got {max_groups}")


def _table(values: ValueFn, num_tasks: int, candidates: Sequence[tuple[int, ...]] | None
           ) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Candidate groups and V (n, T): V[c, j] = v_j(candidate c), -inf where j is not in it."""
    if candidates is None:
        candidates = [g for r in range(1, num_tasks + 1) for g in itertools.combinations(range(num_tasks), r)]
    groups = [tuple(sorted(set(g))) for g in candidates]
    for g in groups:
        if not g or g[0] < 0 or g[-1] >= num_tasks:
            raise ValueError(f"candidate group {g} must be a non-empty set of task indices in 0..{num_tasks - 1}")
    V = np.full((len(groups), num_tasks), -np.inf)
    for c, g in enumerate(groups):
        v = np.asarray(values(g), dtype=float)
        if v.shape != (len(g),) or not np.isfinite(v).all():
            raise ValueError(f"values of group {g} must be {len(g)} finite numbers, got {v}")
        V[c, list(g)] = v
    uncovered = [j for j in range(num_tasks) if np.isinf(V[:, j]).all()]
    if uncovered:
        raise ValueError(f"tasks {uncovered} are in no candidate group, so no grouping can serve them")
    return groups, V


def _grouping(groups: list[tuple[int, ...]], V: np.ndarray, chosen: Sequence[int]) -> Grouping:
    chosen = sorted(chosen, key=lambda c: groups[c])
    sub = V[chosen]  # (k, T)
    best = sub.argmax(0)
    return Grouping(tuple(groups[c] for c in chosen), tuple(int(b) for b in best), float(sub.max(0).sum()))


def count_families(num_candidates: int, max_groups: int) -> int:
    """How many families of at most ``max_groups`` groups :func:`exhaustive_search` would score."""
    return sum(math.comb(num_candidates, r) for r in range(1, min(max_groups, num_candidates) + 1))


def exhaustive_search(values: ValueFn, num_tasks: int, max_groups: int,
                      candidates: Sequence[tuple[int, ...]] | None = None,
                      max_families: int = MAX_FAMILIES, disjoint: bool = False) -> Grouping:
    """The best family of at most ``max_groups`` groups, by scoring every one (candidates: all subsets).

    ``disjoint=True`` scores only families of pairwise disjoint groups (partitions).
    """
    _check_budget(num_tasks, max_groups)
    groups, V = _table(values, num_tasks, candidates)
    n = count_families(len(groups), max_groups)
    if n > max_families:
        raise BudgetError(f"exhaustive search over {len(groups)} candidate groups with up to {max_groups} groups "
                          f"would score {n:,} families, more than max_families={max_families:,}; "
                          "use branch_and_bound or greedy_search")
    best, best_score = None, -math.inf
    for r in range(1, min(max_groups, len(groups)) + 1):
        for family in itertools.combinations(range(len(groups)), r):
            if disjoint and sum(len(groups[c]) for c in family) != len(set().union(*(groups[c] for c in family))):
                continue
            score = V[list(family)].max(0).sum()
            if score > best_score + _TOL:
                best, best_score = family, score
    if best is None:
        raise BudgetError(f"no family of at most {max_groups} candidate groups serves all {num_tasks} tasks")
    return _grouping(groups, V, best)


def branch_and_bound(values: ValueFn, num_tasks: int, max_groups: int,
                     candidates: Sequence[tuple[int, ...]] | None = None, disjoint: bool = False) -> Grouping:
    """The optimum of :func:`exhaustive_search`, found by depth-first search with an upper bound.

    Candidates are tried in order of decreasing total value. The objective
    f(S) = Σ_j max_{g ∈ S} v_j(g) is monotone submodular (a facility-location function),
    so adding r more groups to a partial family S gains at most the sum of the r largest
    single-group gains Δ(c | S) = Σ_j max(0, v_j(c) − b_j) over the candidates c still to
    come (b_j: task j's best value in S). A partial family is abandoned when that bound,
    or Σ_j max(b_j, m_j) with m_j task j's best value in any candidate still to come,
    cannot beat the best complete family so far. Unserved tasks count at a floor value
    low enough that any family serving every task beats any that does not.
    ``disjoint=True`` only extends a family by candidates sharing no task with it
    (partitions); the bounds, taken over every remaining candidate, stay valid.
    """
    _check_budget(num_tasks, max_groups)
    groups, V = _table(values, num_tasks, candidates)
    order = np.argsort(-np.where(np.isinf(V), 0.0, V).sum(1), kind="stable")
    groups, V = [groups[c] for c in order], V[order]
    finite = V[np.isfinite(V)]
    floor = num_tasks * (finite.min() - finite.max()) - 1.0
    V = np.where(np.isinf(V), floor, V)
    n = len(groups)
    suffix = np.full((n + 1, num_tasks), floor)  # suffix[c, j] = best v_j over candidates c..n-1
    for c in range(n - 1, -1, -1):
        suffix[c] = np.maximum(suffix[c + 1], V[c])
    state = {"score": -math.inf, "family": None}

    def bound(start: int, left: int, best: np.ndarray) -> float:
        reach = np.maximum(best, suffix[start])
        if (reach <= floor).any():
            return -math.inf  # some unserved task is in no remaining candidate
        gains = (np.maximum(V[start:], best) - best).sum(1)
        top = np.partition(gains, len(gains) - left)[len(gains) - left:] if left < len(gains) else gains
        return min(reach.sum(), best.sum() + top.sum())

    members = [set(g) for g in groups]

    def visit(start: int, family: list[int], best: np.ndarray, used: set[int]) -> None:
        if (best > floor).all() and best.sum() > state["score"] + _TOL:
            state["score"], state["family"] = best.sum(), list(family)
        left = max_groups - len(family)
        if left == 0 or start == n or bound(start, left, best) <= state["score"] + _TOL:
            return
        for c in range(start, n):
            if disjoint and not used.isdisjoint(members[c]):
                continue
            family.append(c)
            visit(c + 1, family, np.maximum(best, V[c]), used | members[c])
            family.pop()
            if bound(c + 1, left, best) <= state["score"] + _TOL:
                return

    visit(0, [], np.full(num_tasks, floor), set())
    if state["family"] is None:
        raise BudgetError(f"no family of at most {max_groups} candidate groups serves all {num_tasks} tasks")
    return _grouping(groups, V, state["family"])


def greedy_search(values: ValueFn, num_tasks: int, max_groups: int) -> Grouping:
    """A partition into at most ``max_groups`` groups by greedy merging, then single-task moves (see module doc)."""
    _check_budget(num_tasks, max_groups)
    value = lru_cache(maxsize=None)(lambda g: float(sum(values(g))))

    def total(part: list[tuple[int, ...]]) -> float:
        return sum(value(g) for g in part)

    part = [(j,) for j in range(num_tasks)]
    while len(part) > 1:
        pairs = itertools.combinations(range(len(part)), 2)
        gain, a, b = max((value(tuple(sorted(part[a] + part[b]))) - value(part[a]) - value(part[b]), a, b)
                         for a, b in pairs)
        if len(part) <= max_groups and gain <= _TOL:
            break
        part = [g for k, g in enumerate(part) if k not in (a, b)] + [tuple(sorted(part[a] + part[b]))]
    part = _improve_by_moves(part, total, num_tasks, max_groups)
    chosen = sorted(part)
    groups, V = _table(values, num_tasks, chosen)
    return _grouping(groups, V, range(len(groups)))


def _improve_by_moves(part: list[tuple[int, ...]], total: Callable, num_tasks: int, max_groups: int
                      ) -> list[tuple[int, ...]]:
    """Move one task to another group (or alone, within the budget) while the total value rises."""
    score = total(part)
    improved = True
    while improved:
        improved = False
        for j in range(num_tasks):
            src = next(k for k, g in enumerate(part) if j in g)
            rest = [g for k, g in enumerate(part) if k != src]
            left = tuple(t for t in part[src] if t != j)
            base = rest + ([left] if left else [])
            options = [base[:k] + [tuple(sorted(g + (j,)))] + base[k + 1:] for k, g in enumerate(base)]
            if len(base) < max_groups:
                options.append(base + [(j,)])
            for option in options:
                if total(option) > score + 1e-9:
                    part, score, improved = option, total(option), True
                    break
    return part


SEARCHES: dict[str, Callable[..., Grouping]] = {"exhaustive": exhaustive_search, "branch_and_bound": branch_and_bound,
                                                "greedy": greedy_search}


def select_groups(values: ValueFn, num_tasks: int, max_groups: int, method: str = "branch_and_bound",
                  disjoint: bool = False) -> Grouping:
    """Choose groups with the search named ``method``: "exhaustive", "branch_and_bound" or "greedy".

    ``disjoint=True``: partitions only (greedy always returns one).
    """
    if method not in SEARCHES:
        raise KeyError(f"unknown group search {method!r}; known: {', '.join(SEARCHES)}")
    if method == "greedy":
        return greedy_search(values, num_tasks, max_groups)
    return SEARCHES[method](values, num_tasks, max_groups, disjoint=disjoint)


__all__ = ["BudgetError", "Grouping", "MAX_FAMILIES", "SEARCHES", "ValueFn", "affinity_values", "branch_and_bound",
           "count_families", "exhaustive_search", "greedy_search", "select_groups"]
