"""Planted-group regression data: shapes, labels, seeding, and the planted structure in the targets."""
import pytest
import torch

from mtlkit.data.planted import planted_groups


def test_shapes_names_and_labels():
    data, labels = planted_groups(50, (3, 1, 2), dim=6, seed=0)
    assert labels == [0, 0, 0, 1, 2, 2]
    assert data.tasks.names == ["t1", "t2", "t3", "t4", "t5", "t6"]
    assert data.x.shape == (50, 6) and all(y.shape == (50, 1) for y in data.targets.values())


def test_seeded():
    a, _ = planted_groups(20, seed=3)
    b, _ = planted_groups(20, seed=3)
    c, _ = planted_groups(20, seed=4)
    assert torch.equal(a.x, b.x) and all(torch.equal(a.targets[n], b.targets[n]) for n in a.tasks)
    assert not torch.equal(a.x, c.x)


def test_targets_correlate_within_groups_not_across():
    data, labels = planted_groups(4000, (2, 2, 2), dim=10, within=0.1, noise=0.1, seed=0)
    Y = torch.cat([data.targets[n] for n in data.tasks], 1)
    C = torch.corrcoef(Y.T).abs()
    L = torch.tensor(labels)
    same = (L[:, None] == L[None]) & ~torch.eye(6, dtype=torch.bool)
    assert C[same].min() > 0.8 and C[L[:, None] != L[None]].max() < 0.15


def test_targets_are_centred():
    """E y_t = 0 exactly (the sines' mean is subtracted), so no relation is shared by every task."""
    data, _ = planted_groups(40000, (1, 1, 1), dim=5, noise=0.0, scale=1.5, seed=2)
    for name in data.tasks:
        y = data.targets[name]
        assert abs(float(y.mean())) < 4 * float(y.std()) / len(y) ** 0.5, name


def test_within_zero_and_no_noise_make_group_members_identical():
    data, _ = planted_groups(100, (2, 1), within=0.0, noise=0.0, seed=0)
    torch.testing.assert_close(data.targets["t1"], data.targets["t2"])


@pytest.mark.parametrize("kwargs,match", [
    (dict(n=0), "n must be"), (dict(group_sizes=(2, 0)), "positive integers"), (dict(group_sizes=()), "positive"),
    (dict(group_sizes=(1, 1, 1), dim=2), "dim >= 3"), (dict(noise=-1.0), "must be >= 0")])
def test_bad_arguments_are_named(kwargs, match):
    kwargs.setdefault("n", 10)
    with pytest.raises(ValueError, match=match):
        planted_groups(**kwargs)
