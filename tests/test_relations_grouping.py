"""Group selection (mtlkit.relations.grouping) and Standley's group trainings, on matrices with known answers."""
from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtlkit.relations import (BudgetError, GroupRuns, affinity_values, branch_and_bound, exhaustive_search,
                              greedy_search, groups_up_to, select_groups, train_groups, trainings_needed)
from mtlkit.relations.grouping import count_families

# Z[i, j] = affinity of i onto j; {0, 1} score 0.4 + 0.6 = 1.0 and {2, 3} score 0.7 + 0.5 = 1.2
Z4 = torch.tensor([[1.0, 0.6, -0.2, 0.0], [0.4, 1.0, 0.1, -0.3], [-0.1, 0.0, 1.0, 0.5], [0.2, -0.4, 0.7, 1.0]])


def brute_force(values, T: int, k: int) -> float:
    """The best total over every family of groups (every subset of the 2^T - 1 groups) with at most k members."""
    groups = [g for r in range(1, T + 1) for g in itertools.combinations(range(T), r)]
    table = {g: dict(zip(g, values(g))) for g in groups}
    best = float("-inf")
    for mask in range(1, 2 ** len(groups)):
        family = [g for b, g in enumerate(groups) if mask >> b & 1]
        if len(family) > k:
            continue
        served = [[table[g][j] for g in family if j in g] for j in range(T)]
        if all(served):
            best = max(best, sum(max(v) for v in served))
    return best


def random_values(T: int, seed: int):
    return affinity_values(torch.randn(T, T, generator=torch.Generator().manual_seed(seed)))


def block_affinity(labels: list[int], seed: int, noise: float = 0.1, bounded: bool = False) -> torch.Tensor:
    """Z = 1[same block] - 0.3 + noise: Gaussian N(0, noise²), or uniform in [-noise, noise] when ``bounded``."""
    L = torch.tensor(labels)
    g = torch.Generator().manual_seed(seed)
    T = len(labels)
    e = 2 * torch.rand(T, T, generator=g) - 1 if bounded else torch.randn(T, T, generator=g)
    return (L[:, None] == L[None]).float() - 0.3 + noise * e


def safe_noise(T: int) -> float:
    """Noise bound under which the planted blocks are the unique optimum of every family of <= k groups.

    Without noise, v_j(g) = (share of j's partners in j's block) - 0.3, and 0 alone. Each task's
    best is 0.7 (a block of >= 2: a pure group with partners) or 0 (a block of one: alone),
    and the planted partition reaches every task's best; any other family of <= k groups
    leaves some task short by at least delta = min(0.3, 1 / (T - 1)) (served with an
    outsider among at most T - 1 partners, or a lone task served with others). Noise of
    size <= b moves each served value by <= b, so the planted blocks still win when
    2 b T < delta; we take b = delta / (4 T).
    """
    return min(0.3, 1 / max(T - 1, 1)) / (4 * T)


def test_known_grouping_of_four_tasks():
    v = affinity_values(Z4)
    assert exhaustive_search(v, 4, 2).partition() == [(0, 1), (2, 3)]
    assert exhaustive_search(v, 4, 2).score == pytest.approx(2.2)
    assert exhaustive_search(v, 4, 1).groups == ((0, 1, 2, 3),)


@pytest.mark.parametrize("T,k", [(2, 1), (2, 2), (3, 1), (3, 2), (3, 3), (4, 2), (4, 3)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exhaustive_search_matches_brute_force_enumeration(T, k, seed):
    values = random_values(T, seed)
    grouping = exhaustive_search(values, T, k)
    assert grouping.score == pytest.approx(brute_force(values, T, k))
    assert len(grouping.groups) <= k and set().union(*grouping.groups) == set(range(T))
    for j, k_served in enumerate(grouping.served_by):
        assert j in grouping.groups[k_served]


@settings(max_examples=40, deadline=None)
@given(T=st.integers(1, 5), k=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_branch_and_bound_finds_the_exhaustive_optimum(T, k, seed):
    values = random_values(T, seed)
    assert branch_and_bound(values, T, k).score == pytest.approx(exhaustive_search(values, T, k).score, abs=1e-9)


def partitions(items: list[int]):
    """Every set partition of ``items``."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in partitions(rest):
        yield [(first,)] + part
        for b in range(len(part)):
            yield part[:b] + [tuple(sorted((first,) + part[b]))] + part[b + 1:]


@settings(max_examples=40, deadline=None)
@given(T=st.integers(1, 5), k=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_disjoint_searches_find_the_best_partition(T, k, seed):
    values = random_values(T, seed)
    best = max(sum(sum(values(g)) for g in part) for part in partitions(list(range(T))) if len(part) <= k)
    for search in (exhaustive_search, branch_and_bound):
        found = search(values, T, k, disjoint=True)
        assert sorted(j for g in found.groups for j in g) == list(range(T)) and len(found.groups) <= k
        assert found.score == pytest.approx(best, abs=1e-9)
    assert greedy_search(values, T, k).score <= best + 1e-9


@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 6), k=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_greedy_gives_a_valid_partition_no_better_than_the_optimum(T, k, seed):
    values = random_values(T, seed)
    grouping = greedy_search(values, T, k)
    part = grouping.partition()
    assert sorted(j for g in part for j in g) == list(range(T)) and len(part) <= k
    assert grouping.score <= branch_and_bound(values, T, k).score + 1e-9


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 3), min_size=1, max_size=3), seed=st.integers(0, 10_000))
def test_every_search_recovers_planted_blocks(sizes, seed):
    labels = [g for g, s in enumerate(sizes) for _ in range(s)]
    T, k = len(labels), len(sizes)
    values = affinity_values(block_affinity(labels, seed, noise=safe_noise(T), bounded=True))
    truth = sorted(tuple(j for j in range(T) if labels[j] == g) for g in range(k))
    optimum = exhaustive_search(values, T, k) if count_families(2 ** T - 1, k) < 50_000 else None
    for method in ("branch_and_bound", "greedy"):
        found = select_groups(values, T, k, method)
        assert sorted(found.partition()) == truth, method
        if optimum is not None:
            assert found.score == pytest.approx(optimum.score)


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 3), min_size=1, max_size=3), seed=st.integers(0, 10_000))
def test_optimal_searches_never_score_below_the_planted_blocks(sizes, seed):
    """With unbounded noise the planted blocks need not be optimal, but the optimum is never worse than them."""
    labels = [g for g, s in enumerate(sizes) for _ in range(s)]
    T, k = len(labels), len(sizes)
    values = affinity_values(block_affinity(labels, seed, noise=0.3))
    planted = sum(sum(values(tuple(j for j in range(T) if labels[j] == g))) for g in range(k))
    assert branch_and_bound(values, T, k).score >= planted - 1e-9


def test_overlapping_groups_can_beat_the_planted_blocks():
    """A task served by a pair with its best partner gets max_i Z[i, j] >= its block's mean: overlaps can pay.

    Blocks {0, 1, 2}, {3}, {4} with k = 3. Serving 0 and 2 by (0, 2) and 1 by (1, 2)
    gains more for the block (1.0 + 0.8 + 1.0 against its means 0.65 + 0.55 + 0.9) than
    putting 3 and 4 together costs (-0.05 each). Both optimal searches agree: it is the
    objective, not a search error; ``disjoint=True`` asks for partitions only.
    """
    Z = torch.tensor([[0.0, 0.3, 1.0, -0.5, -0.5], [0.3, 0.0, 0.8, -0.5, -0.5], [1.0, 0.8, 0.0, -0.5, -0.5],
                      [-0.5, -0.5, -0.5, 0.0, -0.05], [-0.5, -0.5, -0.5, -0.05, 0.0]])
    values = affinity_values(Z)
    planted = sum(values((0, 1, 2)))
    for search in (exhaustive_search, branch_and_bound):
        found = search(values, 5, 3)
        assert found.groups == ((0, 2), (1, 2), (3, 4)) and found.score == pytest.approx(2.8 - 0.1)
        assert found.score > planted
        assert search(values, 5, 3, disjoint=True).partition() == [(0, 1, 2), (3,), (4,)]


def test_greedy_scales_to_many_tasks():
    labels = [t % 5 for t in range(30)]
    grouping = greedy_search(affinity_values(block_affinity(labels, 0)), 30, 5)
    assert sorted(grouping.partition()) == sorted(tuple(range(g, 30, 5)) for g in range(5))


def test_two_identical_tasks_are_grouped_together():
    Z = torch.eye(3) + torch.tensor([[0.0, 1.0, -0.5], [1.0, 0.0, -0.5], [-0.5, -0.5, 0.0]])
    assert branch_and_bound(affinity_values(Z), 3, 2).partition() == [(0, 1), (2,)]


def test_budget_violations_give_clear_errors():
    v = affinity_values(Z4)
    for search in (exhaustive_search, branch_and_bound, greedy_search):
        with pytest.raises(BudgetError, match="at least one group"):
            search(v, 4, 0)
    with pytest.raises(BudgetError, match="use branch_and_bound or greedy_search"):
        exhaustive_search(random_values(8, 0), 8, 4)
    with pytest.raises(BudgetError, match="no family of at most 1"):
        branch_and_bound(v, 4, 1, candidates=[(0, 1), (2, 3)])
    with pytest.raises(ValueError, match=r"tasks \[3\] are in no candidate group"):
        exhaustive_search(v, 4, 2, candidates=[(0, 1), (2,)])
    with pytest.raises(ValueError, match="must be square"):
        affinity_values(torch.zeros(2, 3))
    with pytest.raises(KeyError, match="unknown group search 'magic'"):
        select_groups(v, 4, 2, "magic")


def test_grouping_names_and_labels():
    grouping = branch_and_bound(affinity_values(Z4), 4, 2)
    assert grouping.named(["a", "b", "c", "d"]) == [("a", "b"), ("c", "d")]
    assert len(set(grouping.labels[:2])) == 1 and grouping.labels[0] != grouping.labels[2]


# -- Standley: trained groups, budgets, higher-order estimates -----------------------------------------
def fake_fit(calls: list):
    """Task j's loss in group g: 1 alone, 1 - 0.1 per partner of the same parity, + 0.2 per other partner."""
    def fit(names):
        calls.append(names)
        idx = [int(n[1:]) for n in names]
        return {n: {"loss": 1.0 - sum(0.1 if (i - j) % 2 == 0 else -0.2 for i in idx if i != j), "mse": 1.0}
                for n, j in zip(names, idx)}
    return fit


TASKS = ("t0", "t1", "t2", "t3")


def test_standley_trains_singles_and_pairs_and_reads_gains():
    calls = []
    runs = train_groups(fake_fit(calls), TASKS)
    assert runs.runs == len(calls) == trainings_needed(4) == 4 + 6
    S = runs.pair_gains()
    assert S[0, 2] == pytest.approx(0.1) and S[0, 1] == pytest.approx(-0.2) and S[1, 1] == 0
    assert runs.single_task_scores()["t3"] == {"loss": 1.0, "mse": 1.0}
    assert runs.affinity().runs == 10
    grouping = branch_and_bound(runs.values(), 4, 2)
    assert grouping.partition() == [(0, 2), (1, 3)]


def test_standley_higher_order_estimate_averages_pairs_unless_measured():
    runs = train_groups(fake_fit([]), TASKS)
    assert runs.loss((0, 1, 2)) == pytest.approx({0: (1.2 + 0.9) / 2, 1: (1.2 + 1.2) / 2, 2: (0.9 + 1.2) / 2})
    train_groups(fake_fit([]), TASKS, groups=[(0, 1, 2)], runs=runs)
    assert runs.loss((0, 1, 2)) == pytest.approx({0: 1.1, 1: 1.4, 2: 1.1})


def test_standley_budget_is_checked_before_training():
    calls = []
    with pytest.raises(BudgetError, match="needs 10 trainings .4 single-task, 6 pairs, 0 larger. but the budget "
                                          "allows 9"):
        train_groups(fake_fit(calls), TASKS, budget=9)
    assert calls == []
    runs = train_groups(fake_fit(calls), TASKS, groups=groups_up_to(4, 1), budget=4)
    train_groups(fake_fit(calls), TASKS, budget=6, runs=runs)  # the singles are already trained
    assert len(calls) == 10


def test_standley_names_what_is_missing():
    runs = GroupRuns(TASKS)
    with pytest.raises(KeyError, match="'t0' was never trained alone"):
        runs.single(0)
    with pytest.raises(KeyError, match=r"pairs \(t0, t1\)"):
        runs.loss((0, 1, 2))
    with pytest.raises(KeyError, match="no 'loss' score"):
        train_groups(lambda names: {n: {"mse": 1.0} for n in names}, TASKS, groups=[(0,)])
    with pytest.raises(ValueError, match="order must be between 1"):
        groups_up_to(3, 4)


def test_an_affinity_scores_groups_by_its_matrix():
    from mtlkit.relations import Affinity
    affinity = Affinity("tag", ("a", "b", "c", "d"), Z4, runs=1, seconds=0.0)
    assert affinity.values()((0, 1)) == pytest.approx([0.4, 0.6])
    assert branch_and_bound(affinity.values(), 4, 2).partition() == [(0, 1), (2, 3)]
    with pytest.raises(ValueError, match=r"must be \(3, 3\)"):
        Affinity("tag", ("a", "b", "c"), Z4, runs=1, seconds=0.0)
