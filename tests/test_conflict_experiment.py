"""mtlkit.experiments.conflict: notebook 07's conflict-by-correlation sweep and the held-out check of an update."""
import pytest
import torch

import mtlkit
from mtlkit.data import correlated_regression
from mtlkit.experiments.conflict import HeldOutConflict, conflict_by_correlation
from mtlkit.experiments.transfer import TransferSetup

SMALL = TransferSetup(n_train=200, n_test=200, dim=8, widths=(16, 4))


def _three_tasks(n=96, seed=0):
    data = correlated_regression(n, 0.0, dim=6, num_tasks=3, noise=0.5, seed=seed)
    mtlkit.seed_everything(seed)
    return data, mtlkit.HardSharing.mlp(data.tasks, 6, (8,))


def test_the_sweep_gives_one_fraction_per_seed_and_rho():
    out = conflict_by_correlation((0.9, 0.0), seeds=[3, 4], steps=6, lr=1e-2, every=2, probe_size=32, setup=SMALL,
                                  device="cpu")
    assert list(out) == [0.9, 0.0] and all(len(v) == 2 for v in out.values())
    assert all(0.0 <= f <= 1.0 for v in out.values() for f in v)
    again = conflict_by_correlation((0.9,), seeds=[3], steps=6, lr=1e-2, every=2, probe_size=32, setup=SMALL,
                                    device="cpu")
    assert again[0.9] == out[0.9][:1]  # seeded: the same seed gives the same run


def test_records_the_updates_own_and_new_batch_cosines_and_equal_weightings():
    data, model = _three_tasks()
    check = HeldOutConflict(data, every=2, batch_size=16, seed=1)
    mtlkit.Trainer(model, "upgrad", lr=1e-2, batch_size=16, seed=0, device="cpu", callbacks=[check]).fit(data, steps=8)
    assert check.steps == [2, 4, 6, 8]
    assert all(row.shape == (3,) for rows in (check.own, check.held, check.own_ew, check.held_ew) for row in rows)
    assert check.conflict_rate("own") == 0.0  # UPGrad: d · g_i >= 0 on its own batch
    assert 0.0 <= check.conflict_rate("held") <= 1.0 and 0.0 <= check.conflict_rate("held", ew=True) <= 1.0
    with pytest.raises(ValueError, match="which must be 'own' or 'held'"):
        check.conflict_rate("test")


def test_the_new_batch_is_taken_at_the_parameters_the_step_starts_from():
    # full-batch training and a "held-out" set equal to the training set: G' must equal G exactly
    data, model = _three_tasks(n=48)
    check = HeldOutConflict(data, every=1, batch_size=48, seed=0)
    mtlkit.Trainer(model, "pcgrad", lr=1e-2, batch_size=48, seed=0, device="cpu", callbacks=[check]).fit(data, steps=5)
    assert check.steps == [2, 3, 4, 5]  # step 1 has no gradients taken before it
    for own, held, own_ew, held_ew in zip(check.own, check.held, check.own_ew, check.held_ew):
        assert torch.allclose(own, held, atol=1e-5) and torch.allclose(own_ew, held_ew, atol=1e-5)


def test_a_weighting_method_is_refused_by_name():
    data, model = _three_tasks()
    check = HeldOutConflict(data, every=1)
    trainer = mtlkit.Trainer(model, "equal", lr=1e-2, batch_size=16, seed=0, device="cpu", callbacks=[check])
    with pytest.raises(TypeError, match="gradient method on the shared parameters.*'equal'"):
        trainer.fit(data, steps=3)
    with pytest.raises(ValueError, match="every must be >= 1"):
        HeldOutConflict(data, every=0)
