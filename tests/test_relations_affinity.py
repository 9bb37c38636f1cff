"""Affinity methods (TAG, gradient cosine, Task2Vec, transfer, Standley) on small cases with known answers and
on planted groups, which every method must recover."""
from __future__ import annotations

import copy
import types

import pytest
import torch
from sklearn.metrics import adjusted_rand_score

import mtlkit as M
from mtlkit.data import MultiTaskDataset
from mtlkit.data.planted import planted_groups
from mtlkit.models import HardSharing
from mtlkit.models.branched import BranchedNetwork
from mtlkit.relations import (GradientCosineAffinity, TAGAffinity, affinity_values, branch_and_bound, gradient_cosine,
                              group_fitter, lookahead_affinity, random_probe, task2vec_affinity, task2vec_distance,
                              task_embeddings, train_groups, transfer_matrix)
from mtlkit.tasks import TaskSet, regression

WIDTHS = (32, 2)


@pytest.fixture(scope="module")
def planted():
    data, labels = planted_groups(2600, (3, 3, 2), dim=20, noise=0.5, seed=0)
    train, test = data.split(600, 2000, seed=0)
    return train, test, labels


def with_duplicate(seed: int = 0) -> MultiTaskDataset:
    """Tasks a and b are the same targets; c is an unrelated direction."""
    data, _ = planted_groups(256, (1, 1), dim=8, noise=0.1, seed=seed)
    y_a, y_c = data.targets["t1"], data.targets["t2"]
    tasks = TaskSet([regression("a"), regression("b"), regression("c")])
    return MultiTaskDataset(data.x, {"a": y_a, "b": y_a.clone(), "c": y_c}, tasks)


def model_for(data, widths=(16, 4)):
    """A hard-sharing MLP whose heads of a and b start equal: with equal targets they stay exact twins."""
    M.seed_everything(0)
    model = HardSharing.mlp(data.tasks, data.x.shape[1], widths)
    if "b" in model.heads:
        model.heads["b"].load_state_dict(model.heads["a"].state_dict())
    return model


def grouping_ari(Z, labels):
    found = branch_and_bound(affinity_values(Z), len(labels), len(set(labels)))
    return adjusted_rand_score(labels, found.labels)


# -- TAG ----------------------------------------------------------------------------------------------
def test_lookahead_affinity_is_one_sgd_step_on_one_task_then_a_loss_ratio():
    data = with_duplicate()
    model, lr = model_for(data), 0.05
    before = copy.deepcopy(model.state_dict())
    Z = lookahead_affinity(model, data.x, data.targets, lr)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), f"{key} changed"
    for i, name in enumerate(data.tasks):
        twin = copy.deepcopy(model)
        losses = data.tasks.losses(twin(data.x).outputs, data.targets)
        grads = torch.autograd.grad(losses[i], twin.shared_parameters())
        with torch.no_grad():
            for p, g in zip(twin.shared_parameters(), grads):
                p -= lr * g
            after = data.tasks.losses(twin(data.x).outputs, data.targets)
        torch.testing.assert_close(Z[i], 1 - after / losses.detach(), msg=name)


def with_auxiliary_losses(model):
    """The model with a per-task auxiliary term aux_t = 0.5 ||W_t||² on its own head (like PAD-Net's deep supervision)."""
    def auxiliary_losses(self, targets):
        return torch.stack([0.5 * self.heads[n].weight.pow(2).sum() for n in self.tasks])
    model.auxiliary_losses = types.MethodType(auxiliary_losses, model)
    return model


def test_lookahead_compares_the_training_loss_vector_auxiliary_terms_included():
    data = with_duplicate()
    model = with_auxiliary_losses(model_for(data))
    losses, _ = model.loss_vector(data.x, data.targets)
    plain = data.tasks.losses(model(data.x).outputs, data.targets)
    assert (losses - plain).abs().min() > 0.05          # the auxiliary terms are not negligible
    Z = lookahead_affinity(model, data.x, data.targets, lr=1e-9)
    assert Z.abs().max() < 1e-6   # a vanishing step changes no loss: before and after are the same quantity


def test_a_duplicate_task_has_the_highest_affinity():
    """A step on a helps its twin b exactly as much as it helps a itself: the most any task can be helped."""
    data = with_duplicate()
    model = model_for(data)
    Z = lookahead_affinity(model, data.x, data.targets, lr=0.05)
    assert Z[0, 0] > 0
    torch.testing.assert_close(Z[0, 1], Z[0, 0])
    torch.testing.assert_close(Z[1, 0], Z[1, 1])
    assert Z[0, 1] > Z[0, 2] and Z[1, 0] > Z[2, 0]
    C = gradient_cosine(model, data.x, data.targets)
    assert C[0, 1] == pytest.approx(1.0, abs=1e-5) and C[0, 1] > C[0, 2]


def test_tag_and_cosine_callbacks_average_over_training():
    data = with_duplicate()
    tag, cos = TAGAffinity(data, every=2, lr=0.05), GradientCosineAffinity(data, every=2)
    with pytest.raises(RuntimeError, match="measured nothing yet"):
        tag.matrix
    trainer = M.Trainer(model_for(data), lr=1e-2, batch_size=32, device="cpu", callbacks=[tag, cos])
    trainer.fit(data, steps=20)
    assert tag.count == cos.count == 10
    torch.testing.assert_close(tag.matrix, torch.stack(tag.history).mean(0))
    torch.testing.assert_close(tag.matrix[0, 1], tag.matrix[0, 0])
    assert cos.matrix[0, 1] == pytest.approx(1.0, abs=1e-5) and cos.matrix[0, 2] < 0.99
    result = tag.result(runs=1, train_seconds=2.0)
    assert result.method == "tag" and result.tasks == ("a", "b", "c") and result.seconds >= 2.0


def test_affinity_needs_shared_parameters():
    data = with_duplicate()
    alone = BranchedNetwork.mlp(data.tasks, 8, [["a"], ["b"], ["c"]], (8,))
    with pytest.raises(ValueError, match="shares none"):
        lookahead_affinity(alone, data.x, data.targets, 0.1)
    with pytest.raises(ValueError, match="positive"):
        lookahead_affinity(model_for(data), data.x, data.targets, 0.0)
    with pytest.raises(ValueError, match="every must be >= 1"):
        TAGAffinity(data, every=0)


@pytest.mark.parametrize("callback", [TAGAffinity, GradientCosineAffinity])
def test_one_joint_run_recovers_the_planted_groups(planted, callback):
    """Measured on the whole training set every 10 steps, as in notebook 10 (over data seeds 0-29: ARI 1 for TAG on
    all 30, for the cosine on 29)."""
    train, _, labels = planted
    recorder = callback(train, every=10, batch_size=len(train))
    M.seed_everything(0)
    model = HardSharing.mlp(train.tasks, 20, (32, 8))
    M.Trainer(model, lr=1e-2, batch_size=32, device="cpu", callbacks=[recorder]).fit(train, steps=200)
    assert grouping_ari(recorder.matrix, labels) >= 0.8


# -- Task2Vec -------------------------------------------------------------------------------------------
def test_task2vec_distance_of_duplicates_is_zero_and_smallest():
    data = with_duplicate()
    E = task_embeddings(random_probe(8, (16, 8)), data)
    assert E.shape == (3, sum(p.numel() for p in random_probe(8, (16, 8)).parameters())) and (E >= 0).all()
    D = task2vec_distance(E)
    assert torch.allclose(D, D.T) and (D >= 0).all() and (D.diagonal() == 0).all()
    assert D[0, 1] < 1e-5 and D[0, 2] > 0.05 and D[1, 2] > 0.05


def test_task2vec_recovers_the_planted_groups(planted):
    train, _, labels = planted
    affinity = task2vec_affinity(random_probe(20), train)
    assert affinity.runs == 0
    D = 1 - affinity.matrix
    L = torch.tensor(labels)
    same = L[:, None] == L[None]
    off = ~torch.eye(len(labels), dtype=torch.bool)
    assert D[same & off].max() < D[~same].min()
    assert grouping_ari(affinity.matrix, labels) == 1.0


def test_task2vec_rejects_bad_embeddings():
    with pytest.raises(ValueError, match="non-negative"):
        task2vec_distance(-torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"matrix \(T, P\)"):
        task2vec_distance(torch.ones(3))


def test_random_probe_is_seeded_frozen_and_leaves_the_global_generator_alone():
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    a, b = random_probe(4, seed=1), random_probe(4, seed=1)
    assert torch.equal(torch.rand(1), expected)
    assert all(torch.equal(p, q) and not p.requires_grad for p, q in zip(a.parameters(), b.parameters()))


# -- transfer matrix ------------------------------------------------------------------------------------
def test_transfer_matrix_diagonal_is_best():
    data, _ = planted_groups(1400, (1, 1, 1), dim=10, noise=0.3, seed=1)
    train, test = data.split(400, 1000)
    result = transfer_matrix(train, test, steps=200, widths=WIDTHS, device="cpu")
    raw = result.raw
    assert result.runs == 3 and raw.shape == (3, 3)
    for b in range(3):
        assert raw[b, b] < raw[:, b][torch.arange(3) != b].min(), f"target {b}: {raw[:, b]}"
    torch.testing.assert_close(result.normalised.diagonal(), torch.ones(3))
    assert (result.affinity().matrix <= 1.0 + 1e-6).all()


def test_transfer_matrix_recovers_the_planted_groups(planted):
    train, test, labels = planted
    result = transfer_matrix(train, test, steps=150, widths=WIDTHS, device="cpu")
    assert grouping_ari(result.normalised, labels) >= 0.8


# -- Standley ---------------------------------------------------------------------------------------------
def test_standley_pair_gains_recover_the_planted_groups():
    data, labels = planted_groups(2600, (2, 2), dim=20, noise=0.5, seed=1)
    train, test = data.split(600, 2000)
    runs = train_groups(group_fitter(train, test, steps=300, widths=WIDTHS, seed=1, device="cpu"), train.tasks.names,
                        budget=10)
    S = runs.pair_gains()
    assert S[0, 1] + S[1, 0] > max(S[0, 2] + S[2, 0], S[1, 3] + S[3, 1])
    grouping = branch_and_bound(runs.values(), 4, 2)
    assert adjusted_rand_score(labels, grouping.labels) == 1.0
    assert set(runs.single_task_scores()["t1"]) == {"loss", "mse", "mae"}
