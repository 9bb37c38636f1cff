"""Task sampling schedules: the formulas, the empirical frequencies, and one-task-per-step training."""
import math

import pytest
import torch

from mtlkit import HardSharing, NonFiniteError, seed_everything
from mtlkit.data import correlated_regression
from mtlkit.train import Callback
from mtlkit.schedule import SCHEDULES, ScheduledTrainer, TaskSchedule, epoch_progress, split_by_task

SIZES = {"big": 900, "mid": 90, "small": 10}


def normalised(values):
    t = torch.tensor(values, dtype=torch.float64)
    return t / t.sum()


def test_schedule_formulas():
    n = [900.0, 90.0, 10.0]
    assert torch.allclose(TaskSchedule(SIZES, "uniform").probabilities(), torch.full((3,), 1 / 3, dtype=torch.float64))
    assert torch.allclose(TaskSchedule(SIZES, "proportional").probabilities(), normalised(n))
    assert torch.allclose(TaskSchedule(SIZES, "temperature", temperature=2.0).probabilities(),
                          normalised([math.sqrt(v) for v in n]))
    assert torch.allclose(TaskSchedule(SIZES, "temperature", temperature=1.0).probabilities(), normalised(n))
    hot = TaskSchedule(SIZES, "temperature", temperature=1e6).probabilities()
    assert torch.allclose(hot, torch.full((3,), 1 / 3, dtype=torch.float64), atol=1e-4)


def test_annealed_schedule_moves_from_proportional_to_exponent_0_2():
    s = TaskSchedule(SIZES, "annealed")
    n = [900.0, 90.0, 10.0]
    assert torch.allclose(s.probabilities(0.0), normalised(n))
    assert torch.allclose(s.probabilities(1.0), normalised([v ** 0.2 for v in n]))
    assert s.exponent(0.5) == pytest.approx(0.6)
    smallest = [float(s.probabilities(p)[2]) for p in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert smallest == sorted(smallest) and smallest[-1] > 5 * smallest[0]


@pytest.mark.parametrize("kind", SCHEDULES)
def test_empirical_frequencies_match_the_schedule(kind):
    s = TaskSchedule(SIZES, kind)
    draws = s.sample(20000, progress=0.5, generator=torch.Generator().manual_seed(0))
    p = s.probabilities(0.5)
    freq = torch.tensor([draws.count(n) for n in SIZES], dtype=torch.float64) / len(draws)
    sigma = (p * (1 - p) / len(draws)).sqrt()
    assert ((freq - p).abs() <= 4 * sigma + 1e-12).all(), (freq, p)


def test_epoch_progress():
    assert [epoch_progress(s, 100, 5) for s in (0, 19, 20, 59, 99)] == [0.0, 0.0, 0.25, 0.5, 1.0]
    assert epoch_progress(50, 100, 1) == 0.0
    with pytest.raises(ValueError, match="step"):
        epoch_progress(100, 100, 5)


def test_bad_schedules_are_named():
    with pytest.raises(ValueError, match="unknown schedule 'cyclic'"):
        TaskSchedule(SIZES, "cyclic")
    with pytest.raises(ValueError, match="task 'b'"):
        TaskSchedule({"a": 5, "b": 0})
    with pytest.raises(ValueError, match="temperature"):
        TaskSchedule(SIZES, "temperature", temperature=0.0)
    with pytest.raises(ValueError, match="progress"):
        TaskSchedule(SIZES, "annealed").probabilities(1.5)


def make_setup(sizes=None, seed=0):
    """A pool of 1200 examples split into one dataset per task, and 800 held-out examples of the same tasks."""
    pool, test = correlated_regression(2000, rho=0.9, dim=8, num_tasks=3, seed=seed).split(1200, 800, seed=seed)
    return pool, test, split_by_task(pool, sizes or {"t1": 600, "t2": 200, "t3": 20}, seed=seed)


def test_split_by_task_gives_disjoint_single_task_sets():
    data, _, parts = make_setup()
    assert {n: len(d) for n, d in parts.items()} == {"t1": 600, "t2": 200, "t3": 20}
    assert all(d.tasks.names == [n] for n, d in parts.items())
    rows = torch.cat([d.x for d in parts.values()])
    assert torch.unique(rows, dim=0).shape[0] == rows.shape[0]
    with pytest.raises(ValueError, match="need 1300 examples"):
        split_by_task(data, {"t1": 1300})
    with pytest.raises(KeyError, match="'t9'"):
        split_by_task(data, {"t9": 10})


def trainer_for(parts, kind, seed=0, **kwargs):
    seed_everything(seed)
    model = HardSharing.mlp(correlated_regression(4, 0.9, dim=8, num_tasks=3).tasks, in_dim=8, widths=(16,))
    schedule = TaskSchedule({n: len(d) for n, d in parts.items()}, kind, **kwargs)
    return ScheduledTrainer(model, parts, schedule, lr=1e-2, batch_size=16, seed=seed, device="cpu")


def test_a_nan_gradient_stops_the_schedule_before_any_update_naming_the_task():
    _, _, parts = make_setup()
    tr = trainer_for(parts, "uniform")
    tr.model.heads["t2"].weight.register_hook(lambda g: torch.full_like(g, float("nan")))
    snapshots = []

    class Snapshot(Callback):
        def on_step(self, trainer, result):
            snapshots.append([p.detach().clone() for p in trainer.model.parameters()])

    tr.trainer.callbacks.append(Snapshot())
    snapshots.append([p.detach().clone() for p in tr.model.parameters()])
    with pytest.raises(NonFiniteError, match="non-finite gradient w.r.t. the model parameters for task t2"):
        tr.fit(steps=60)   # uniform over three tasks: t2 is drawn within 60 steps
    assert all(torch.equal(a, b) for a, b in zip(snapshots[-1], tr.model.parameters()))  # as after the last good step
    assert "t2" not in tr.history.tasks and len(tr.history.tasks) == len(snapshots) - 1


def test_a_scheduled_step_trains_the_models_auxiliary_term_for_its_task():
    _, _, parts = make_setup()
    tr = trainer_for(parts, "uniform")
    tr.model.auxiliary_losses = lambda targets: torch.tensor([1.0, 2.0, 3.0])
    loss = tr.train_step("t3")
    assert loss > 3.0 and tr.trainer.history["loss"][-1] == [loss]   # L_3 + aux_3, recorded by the Trainer


def test_one_step_moves_only_the_drawn_tasks_head():
    _, _, parts = make_setup()
    tr = trainer_for(parts, "uniform")
    before = {n: [p.detach().clone() for p in tr.model.task_parameters(n)] for n in tr.model.tasks}
    trunk = [p.detach().clone() for p in tr.model.shared_parameters()]
    tr.train_step("t2")
    changed = {n: any(not torch.equal(a, b) for a, b in zip(before[n], tr.model.task_parameters(n)))
               for n in tr.model.tasks}
    assert changed == {"t1": False, "t2": True, "t3": False}
    assert any(not torch.equal(a, b) for a, b in zip(trunk, tr.model.shared_parameters()))
    assert tr.history.tasks == ["t2"]


def test_training_frequencies_and_annealed_probabilities_are_recorded():
    _, _, parts = make_setup()
    tr = trainer_for(parts, "annealed")
    history = tr.fit(steps=400, epochs=4)
    assert len(history.tasks) == 400 and len(history.probabilities) == 4
    assert history.probabilities[0] == pytest.approx(normalised([600, 200, 20]).tolist())
    assert history.probabilities[-1] == pytest.approx(normalised([600 ** 0.2, 200 ** 0.2, 20 ** 0.2]).tolist())
    per_epoch = [history.tasks[i * 100:(i + 1) * 100].count("t3") for i in range(4)]
    assert per_epoch[-1] > per_epoch[0]


def test_uniform_sampling_serves_the_small_task_better_than_proportional():
    _, test, parts = make_setup()
    small = {}
    for kind in ("proportional", "uniform"):
        tr = trainer_for(parts, kind)
        tr.fit(steps=300)
        small[kind] = (tr.evaluate(test)["t3"]["mse"], float(tr.history.frequencies(["t1", "t2", "t3"])[2]))
    assert small["proportional"][1] < 0.06 and small["uniform"][1] > 0.25
    assert small["uniform"][0] < small["proportional"][0]


def test_mismatched_datasets_are_named():
    _, _, parts = make_setup()
    with pytest.raises(KeyError, match="must name exactly"):
        trainer_for({k: parts[k] for k in ("t1", "t2")}, "uniform")
    seed_everything(0)
    model = HardSharing.mlp(correlated_regression(4, 0.9, dim=8, num_tasks=3).tasks, in_dim=8, widths=(16,))
    wrong = TaskSchedule({"t1": 600, "t2": 200, "t3": 21})
    with pytest.raises(ValueError, match="task 't3': the schedule says 21"):
        ScheduledTrainer(model, parts, wrong)
    swapped = dict(parts, t3=parts["t2"])
    with pytest.raises(KeyError, match="task 't3' has no targets"):
        ScheduledTrainer(model, swapped, TaskSchedule({"t1": 600, "t2": 200, "t3": 200}))


def test_evaluate_on_one_tasks_own_dataset():
    _, test, parts = make_setup()
    tr = trainer_for(parts, "uniform")
    tr.fit(steps=30)
    own = tr.evaluate(parts["t3"])
    assert list(own) == ["t3"] and own["t3"]["mse"] == pytest.approx(own["t3"]["loss"])
    assert tr.evaluate(test)["t3"]["mse"] != own["t3"]["mse"]
    other = correlated_regression(10, rho=0.9, dim=8, num_tasks=4).select_tasks(["t4"])
    with pytest.raises(KeyError, match=r"task\(s\) \['t4'\]"):
        tr.evaluate(other)
