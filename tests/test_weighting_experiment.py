"""mtlkit.experiments.weighting: notebook 06's tuned, paired comparison on the GradNorm toy."""
import pytest
import torch

import mtlkit
from mtlkit.experiments.weighting import mean_score, relative_mse, scale_split, tuned_comparison


def _split(seed):
    return scale_split(seed, sigmas=(1.0, 100.0), sizes=(64, 32, 32), in_dim=6, out_dim=3)


def _model(tasks):
    return mtlkit.HardSharing.mlp(tasks, 6, (8,))


def test_the_split_is_disjoint_and_keeps_the_scales():
    train, val, test = scale_split(0, sizes=(50, 20, 30), in_dim=6, out_dim=3)
    assert (len(train), len(val), len(test)) == (50, 20, 30)
    rows = torch.cat([train.x, val.x, test.x])
    assert len(torch.unique(rows, dim=0)) == 100
    assert float((train.targets["t3"] ** 2).mean() / (train.targets["t1"] ** 2).mean()) > 1e3


def test_relative_mse_is_mse_over_the_error_of_predicting_zero():
    train, val, _ = _split(0)
    mtlkit.seed_everything(0)
    trainer = mtlkit.Trainer(_model(train.tasks), "equal", lr=1e-2, seed=0, device="cpu")
    trainer.fit(train, steps=3)
    preds = trainer.predict(val)
    for name, y in val.targets.items():
        expected = float(((preds[name] - y) ** 2).mean() / (y ** 2).mean())
        assert relative_mse(trainer, val)[name] == pytest.approx(expected, rel=1e-5)
    assert mean_score({"a": 0.2, "b": 0.6}) == pytest.approx(0.4)


def test_paired_runs_make_a_method_identical_to_equal_weighting_gap_zero():
    methods = {"equal": "equal", "unit weights": ("fixed", {"weights": [1.0, 1.0]}), "gls": "gls"}
    tuned = tuned_comparison(methods, _model, _split, lrs=(1e-3, 1e-2), seeds=[0, 1], steps=4, batch_size=16,
                             device="cpu")
    assert tuned.methods == ["equal", "unit weights", "gls"] and tuned.seeds == (0, 1)
    assert tuned.gap("unit weights").values == (0.0, 0.0)  # same model, data and batches at each seed
    for m in tuned.methods:  # each seed keeps the rate with its lowest validation score, and is scored there
        for k, best in enumerate(tuned.best_lrs(m)):
            val = {lr: mean_score(tuned.val[m][lr][k]) for lr in tuned.lrs}
            assert best == min(val, key=val.get)
            assert tuned.score(m).values[k] == pytest.approx(mean_score(tuned.test[m][best][k]))
    gap = tuned.gap("gls")
    assert gap.values == pytest.approx([a - b for a, b in zip(tuned.score("gls").values, tuned.score("equal").values)])
    assert set(tuned.per_task("gls")) == {"t1", "t2"}
    assert "unit weights" in tuned.table() and "best lr per seed" in tuned.table()
    with pytest.raises(KeyError, match="no method 'famo'"):
        tuned.score("famo")
    with pytest.raises(ValueError, match="at least one learning rate"):
        tuned_comparison(["equal"], _model, _split, lrs=(), seeds=[0], steps=1)
