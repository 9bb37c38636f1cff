"""compare(): paired multi-seed comparisons of balancers, mean ± std of test metrics and Δm%."""
import statistics

import pytest

from mtlkit import Trainer, fit_single_task_baselines, seed_everything
from mtlkit.compare import BASELINE, Comparison, MeanStd, compare
from mtlkit.data import correlated_regression
from mtlkit.metrics import delta_m
from mtlkit.models import HardSharing
from mtlkit.train import Callback

DIM = 6
STEPS = 15


def _pair(seed=0):
    data = correlated_regression(160, 0.3, dim=DIM, seed=seed)
    return data.split(100, 60, seed=seed)


PAIR = _pair()


def _model(tasks):
    return HardSharing.mlp(tasks, DIM, (8, 4))


def _compare(methods=("equal", "rlw"), seeds=(0, 1), **kwargs):
    kwargs.setdefault("data", PAIR)
    return compare(list(methods) if not isinstance(methods, dict) else methods, _model, seeds=seeds, steps=STEPS,
                   lr=1e-2, batch_size=16, device="cpu", **kwargs)


@pytest.fixture(scope="module")
def result() -> Comparison:
    return _compare(("equal", "rlw", "famo"), seeds=(0, 1, 2))


def test_the_same_call_twice_gives_identical_numbers(result):
    again = _compare(("equal", "rlw", "famo"), seeds=(0, 1, 2))
    assert again.rows() == result.rows()
    assert again.scores == result.scores and again.baselines == result.baselines


def test_each_run_equals_a_trainer_run_by_hand_at_its_seed(result):
    train, test = PAIR
    for k, seed in enumerate(result.seeds):
        seed_everything(seed)
        trainer = Trainer(_model(train.tasks), "famo", lr=1e-2, batch_size=16, device="cpu", seed=seed)
        trainer.fit(train, steps=STEPS)
        assert trainer.evaluate(test) == result.scores["famo"][k]
        assert result.baselines[k] == fit_single_task_baselines(_model, train, test, seed=seed, lr=1e-2,
                                                                batch_size=16, device="cpu", steps=STEPS)


def test_mean_and_std_are_over_seeds_with_the_sample_std(result):
    values = [run["t1"]["mse"] for run in result.scores["rlw"]]
    stat = result.metric("rlw", "t1", "mse")
    assert stat.values == tuple(values) and len(set(values)) == 3, "different seeds should give different runs"
    assert stat.mean == pytest.approx(statistics.fmean(values))
    assert stat.std == pytest.approx(statistics.stdev(values)) and stat.std > 0


def test_delta_m_is_paired_with_the_baselines_of_the_same_seed(result):
    dm = result.delta_m("equal")
    expected = [delta_m(run, base, result.tasks) for run, base in zip(result.scores["equal"], result.baselines)]
    assert dm.values == pytest.approx(expected)
    assert result.delta_m(BASELINE) == MeanStd(0.0, 0.0, (0.0, 0.0, 0.0))
    per_task = result.per_task_delta("equal")
    assert statistics.fmean([per_task[n].mean for n in result.tasks]) == pytest.approx(dm.mean)


def test_gap_is_the_seed_by_seed_difference(result):
    gap = result.gap("famo", "equal")
    a, b = result.delta_m("famo").values, result.delta_m("equal").values
    assert gap.values == pytest.approx([x - y for x, y in zip(a, b)])
    assert result.gap("equal").values == (0.0, 0.0, 0.0)


def test_one_seed_has_zero_std():
    one = _compare(("equal",), seeds=(3,))
    assert one.metric("equal", "t2", "mae").std == 0.0 and one.delta_m("equal").std == 0.0
    assert len(one.delta_m("equal").values) == 1


def test_rows_and_table_name_every_method_with_mean_and_std(result):
    rows = result.rows()
    assert [r["method"] for r in rows] == [BASELINE, "equal", "rlw", "famo"]
    assert {"delta_m", "delta_m_std", "t1 mse", "t1 mse std", "t2 mae", "t2 mae std"} <= set(rows[1])
    assert rows[2]["t1 mse"] == result.metric("rlw", "t1", "mse").mean
    text = result.table()
    lines = text.splitlines()
    assert "3 seed(s)" in lines[0] and "Δm%" in lines[1] and "t1 mse" in lines[1] and "t1 mae" not in lines[1]
    for label in [BASELINE, *result.methods]:
        line = next(l for l in lines if l.startswith(label + " "))
        assert line.count("±") == 3
    assert "t1 mae" in result.table(all_metrics=True) and str(result) == text


def test_methods_with_labels_and_kwargs_are_paired():
    res = _compare({"fixed 1:1": ("fixed", {"weights": [1.0, 1.0]}), "EW": "equal"}, seeds=(0,), baselines=False)
    assert res.balancers == {"fixed 1:1": "fixed", "EW": "equal"}
    assert res.scores["fixed 1:1"] == res.scores["EW"], "weights 1:1 are equal weighting, run for run"
    assert res.baselines is None and "Δm" not in res.table()
    with pytest.raises(ValueError, match="no single-task baselines"):
        res.delta_m("EW")


def test_data_can_be_redrawn_per_seed():
    seen = []

    def data(seed):
        seen.append(seed)
        return _pair(seed)
    res = _compare(("equal",), seeds=(4, 5), data=data)
    assert seen == [4, 5]
    assert res.baselines[0] != res.baselines[1]


def test_callbacks_and_trainers_of_every_run_are_available():
    made = {}

    class Count(Callback):
        def __init__(self):
            self.steps = 0

        def on_step(self, trainer, result):
            self.steps += 1

    def callbacks(label, seed):
        made[label, seed] = Count()
        return [made[label, seed]]
    res = _compare(("equal", "pcgrad"), seeds=(0, 1), callbacks=callbacks, keep_trainers=True, baselines=False)
    assert sorted(made) == [("equal", 0), ("equal", 1), ("pcgrad", 0), ("pcgrad", 1)]
    assert all(cb.steps == STEPS for cb in made.values())
    assert [t.step_count for t in res.trainers["pcgrad"]] == [STEPS, STEPS]
    assert res.trainers["pcgrad"][1].evaluate(PAIR[1]) == res.scores["pcgrad"][1]


def _never(tasks):
    raise AssertionError("nothing should be trained when the input is bad")


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(methods=["equal", "no_such_method"]), KeyError, r"unknown balancer 'no_such_method'; known: .*equal"),
    (dict(methods=[]), ValueError, "no methods"),
    (dict(methods="equal"), TypeError, r"did you mean \['equal'\]"),
    (dict(methods={"x": ("cagrad", {"radius": 2})}), TypeError, "method 'x': balancer 'cagrad' does not accept"),
    (dict(methods={BASELINE: "equal"}), ValueError, "reserved"),
    (dict(seeds=()), ValueError, "seeds is empty"),
    (dict(seeds=(1, 1)), ValueError, "distinct"),
    (dict(seeds=(-1,)), ValueError, "non-negative"),
    (dict(steps=None), ValueError, "exactly one of steps or epochs"),
    (dict(epochs=2), ValueError, "exactly one of steps or epochs"),
    (dict(steps=0), ValueError, "must be >= 1"),
    (dict(data=PAIR[0]), TypeError, r"\(train, test\) pair"),
    (dict(data=(PAIR[0], PAIR[1].select_tasks(["t1"]))), ValueError, "different tasks"),
    (dict(n_jobs=0), ValueError, "n_jobs must be a positive int"),
    (dict(n_jobs=2, callbacks=lambda label, seed: []), ValueError, "callbacks and keep_trainers need .* n_jobs=1"),
    (dict(n_jobs=-1, keep_trainers=True), ValueError, "n_jobs=1"),
])
def test_bad_input_is_refused_before_any_training(kwargs, error, match):
    args = dict(methods=["equal"], make_model=_never, data=PAIR, seeds=(0,), steps=5, device="cpu")
    args.update(kwargs)
    with pytest.raises(error, match=match):
        compare(**args)


def test_unknown_labels_and_metrics_are_named(result):
    with pytest.raises(KeyError, match="no method 'pcgrad'.*known: equal, rlw, famo, single-task"):
        result.delta_m("pcgrad")
    with pytest.raises(KeyError, match="unknown task 't9'"):
        result.metric("equal", "t9", "mse")
    with pytest.raises(KeyError, match="task 't1' has no metric 'accuracy'"):
        result.metric("equal", "t1", "accuracy")


# -- runs fanned out through joblib ----------------------------------------------------
def _fanned(**kwargs):
    return _compare(("equal", "pcgrad", "famo"), seeds=(0, 1), data=_pair, **kwargs)


@pytest.fixture(scope="module")
def sequential() -> Comparison:
    return _fanned(n_jobs=1)


def test_a_local_process_pool_gives_the_sequential_table_number_for_number(sequential):
    pooled = _fanned(n_jobs=2)
    assert pooled.scores == sequential.scores and pooled.baselines == sequential.baselines
    assert pooled.table(all_metrics=True) == sequential.table(all_metrics=True)


def test_a_dask_cluster_gives_the_sequential_table_number_for_number(sequential):
    joblib = pytest.importorskip("joblib")
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        with joblib.parallel_config(backend="dask"), distributed.get_task_stream(client) as stream:
            on_dask = _fanned()
    assert stream.data, "the runs should have been tasks on the cluster's workers"
    assert on_dask.scores == sequential.scores and on_dask.baselines == sequential.baselines
