"""Knowledge distillation: the losses' known values, the wrapper's contract, and that students learn from teachers."""
import copy

import pytest
import torch
import torch.nn.functional as F

from mtlkit import HardSharing, Trainer, TaskSet, classification, regression, seed_everything
from mtlkit.data import MultiTaskDataset, correlated_regression
from mtlkit.distill import (KnowledgeDistillation, TeacherAnnealing, agreement, feature_matching_loss,
                            soft_target_loss, train_teachers)
from mtlkit.grads import task_gradients


def test_soft_target_loss_known_values():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    assert float(soft_target_loss(t, t)) == pytest.approx(0.0, abs=1e-7)
    assert float(soft_target_loss(s + 3.0, t)) == pytest.approx(float(soft_target_loss(s, t)), rel=1e-5)
    for tau in (1.0, 4.0):
        by_hand = tau ** 2 * F.kl_div(F.log_softmax(s / tau, 1), F.log_softmax(t / tau, 1), log_target=True,
                                      reduction="batchmean")
        assert float(soft_target_loss(s, t, tau)) == pytest.approx(float(by_hand), rel=1e-5)
    dense_s, dense_t = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    flat = soft_target_loss(dense_s.permute(0, 2, 3, 1).reshape(-1, 3), dense_t.permute(0, 2, 3, 1).reshape(-1, 3))
    assert float(soft_target_loss(dense_s, dense_t)) == pytest.approx(float(flat), rel=1e-5)
    with pytest.raises(ValueError, match=r"student logits \(6, 5\) and teacher logits \(6, 4\)"):
        soft_target_loss(s, t[:, :4])


def test_feature_matching_loss_known_values():
    a = torch.randn(4, 7, generator=torch.Generator().manual_seed(1))
    assert float(feature_matching_loss(a, 3.0 * a)) == pytest.approx(0.0, abs=1e-6)
    assert float(feature_matching_loss(a, -a)) == pytest.approx(4.0, rel=1e-5)
    e1, e2 = torch.eye(2)[:1], torch.eye(2)[1:]
    assert float(feature_matching_loss(e1, e2)) == pytest.approx(2.0, rel=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        feature_matching_loss(a, a[:, :3])


def regression_setup(seed=0):
    """Train and test sets, and teachers trained briefly on 80 other examples (so they differ from the gold labels)."""
    data = correlated_regression(680, rho=0.5, dim=10, num_tasks=2, seed=seed)
    train, test, own = data.split(400, 200, 80, seed=seed)
    teachers = train_teachers(lambda tasks: HardSharing.mlp(tasks, 10, widths=(32, 16)), own, steps=100,
                              lr=1e-2, batch_size=32, device="cpu")
    return train, test, teachers


def student(tasks, seed=0):
    seed_everything(seed)
    return HardSharing.mlp(tasks, 10, widths=(16, 8))


def test_train_teachers_gives_one_single_task_model_per_task():
    train, _, teachers = regression_setup()
    assert list(teachers) == ["t1", "t2"]
    assert [t.tasks.names for t in teachers.values()] == [["t1"], ["t2"]]
    assert not any(t.training for t in teachers.values())


def test_teacher_weight_mixes_gold_and_distillation_losses():
    train, _, teachers = regression_setup()
    x, y = train[torch.arange(32)]
    kd = KnowledgeDistillation(student(train.tasks), teachers, teacher_weight=0.0)
    trainer = Trainer(kd, device="cpu")
    gold = train.tasks.losses(kd.student(x).outputs, y)
    assert torch.allclose(trainer.losses(x, y)[0], gold)
    kd.teacher_weight = 1.0
    out = kd.student(x).outputs
    to_teacher = torch.stack([F.mse_loss(out[n], teachers[n](x).outputs[n]) for n in train.tasks])
    assert torch.allclose(trainer.losses(x, y)[0], to_teacher, atol=1e-6)
    kd.teacher_weight = 0.25
    assert torch.allclose(trainer.losses(x, y)[0], 0.75 * gold + 0.25 * to_teacher, atol=1e-6)


def test_teachers_stay_frozen_and_in_eval_mode():
    train, _, teachers = regression_setup()
    before = {n: copy.deepcopy(t.state_dict()) for n, t in teachers.items()}
    kd = KnowledgeDistillation(student(train.tasks), teachers, teacher_weight=0.5)
    Trainer(kd, "mgda", lr=1e-2, device="cpu").fit(train, steps=20)
    assert kd.training and not any(t.training for t in kd.teachers.values())
    for n, t in teachers.items():
        assert all(torch.equal(v, t.state_dict()[k]) for k, v in before[n].items())
        assert not any(p.requires_grad for p in t.parameters())


def test_distilled_student_agrees_with_its_teachers_more_than_a_gold_only_student():
    train, test, teachers = regression_setup()
    gaps = {}
    for w in (0.0, 1.0):
        kd = KnowledgeDistillation(student(train.tasks), teachers, teacher_weight=w)
        Trainer(kd, lr=1e-2, batch_size=32, device="cpu").fit(train, steps=300)
        gaps[w] = agreement(kd.student, teachers, test)
    assert all(gaps[1.0][n] < gaps[0.0][n] for n in train.tasks), gaps


def test_soft_targets_transfer_a_teachers_classes():
    """A student trained on teacher labels only (w = 1) learns the teacher's function, not the gold labels."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 2, generator=g)
    tasks = TaskSet([classification("c", 2)])
    gold = (x[:, 0] > 0).long()
    seed_everything(0)
    teacher = HardSharing.mlp(tasks, 2, widths=(8,))
    with torch.no_grad():  # a teacher that has learnt the *other* coordinate: logits (-5 x_1, 5 x_1)
        first = teacher.trunk[0][0]
        first.weight.zero_(), first.bias.zero_()
        first.weight[1, 1], first.weight[2, 1] = 5.0, -5.0
        head = teacher.heads["c"]
        head.weight.copy_(torch.zeros(2, 8).index_put_((torch.tensor([0, 0, 1, 1]), torch.tensor([1, 2, 1, 2])),
                                                       torch.tensor([-1.0, 1.0, 1.0, -1.0])))
        head.bias.zero_()
    teacher.eval()
    data = MultiTaskDataset(x, {"c": gold}, tasks)
    kd = KnowledgeDistillation(HardSharing.mlp(tasks, 2, widths=(8,)), {"c": teacher}, teacher_weight=1.0)
    Trainer(kd, lr=3e-2, batch_size=64, device="cpu").fit(data, steps=300)
    assert agreement(kd.student, {"c": teacher}, data)["c"] > 0.9
    assert Trainer(kd.student, device="cpu").evaluate(data)["c"]["accuracy"] < 0.7


def test_feature_matching_adaptors_are_task_specific_by_autograd():
    train, _, teachers = regression_setup()
    kd = KnowledgeDistillation(student(train.tasks), teachers, teacher_weight=0.5, feature_weight=1.0,
                               example=train.x[:4])
    x, y = train[torch.arange(16)]
    losses, _ = Trainer(kd, device="cpu").losses(x, y)
    for i, name in enumerate(train.tasks):
        own = kd.task_parameters(name)
        assert any(p is q for p in own for q in kd.adaptors[name].parameters())
        others = [p for n in train.tasks if n != name for p in kd.task_parameters(n)]
        G = task_gradients(losses[i:i + 1], others + own)
        n_other = sum(p.numel() for p in others)
        assert torch.count_nonzero(G[0, :n_other]) == 0 and torch.count_nonzero(G[0, n_other:]) > 0
    shared = {id(p) for p in kd.shared_parameters()}
    assert shared == {id(p) for p in kd.student.shared_parameters()}


def test_teacher_annealing_goes_from_distillation_to_supervision():
    train, _, teachers = regression_setup()
    kd = KnowledgeDistillation(student(train.tasks), teachers, teacher_weight=1.0)
    trainer = Trainer(kd, device="cpu", callbacks=[TeacherAnnealing(40)])
    trainer.fit(train, steps=10)
    assert kd.teacher_weight == pytest.approx(0.75)
    trainer.fit(train, steps=40)
    assert kd.teacher_weight == 0.0


def test_bad_configurations_are_named():
    train, _, teachers = regression_setup()
    with pytest.raises(KeyError, match="unknown task 'z'"):
        KnowledgeDistillation(student(train.tasks), {"z": teachers["t1"]})
    with pytest.raises(ValueError, match="the teacher for task 't2' must predict that same task"):
        KnowledgeDistillation(student(train.tasks), {"t2": teachers["t1"]})
    other_kind = TaskSet([classification("t1", 3), regression("t2")])
    with pytest.raises(ValueError, match="task 't1'"):
        KnowledgeDistillation(HardSharing.mlp(other_kind, 10), {"t1": teachers["t1"]})
    with pytest.raises(ValueError, match="needs `example`"):
        KnowledgeDistillation(student(train.tasks), teachers, feature_weight=1.0)
    with pytest.raises(ValueError, match=r"teacher_weight w must lie in \[0, 1\]"):
        KnowledgeDistillation(student(train.tasks), teachers, teacher_weight=1.5)
