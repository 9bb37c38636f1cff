"""The sweep and the gate measurement behind notebook 03's lessons (mtlkit.experiments.architectures)."""
from __future__ import annotations

import pytest
import torch

from mtlkit.experiments.architectures import correlation_runs, correlation_sweep, gate_difference, regression_split
from mtlkit.experiments.transfer import TransferSetup
from mtlkit.models import MMoE, HardSharing

SMALL = TransferSetup(n_train=64, n_test=32, dim=6, batch_size=16)
CONFIGS = {"hard": {"name": "hard", "widths": (8,)},
           "mmoe": {"name": "mmoe", "num_experts": 2, "expert_widths": (4,), "tower_widths": ()}}


def test_runs_keep_every_configuration_rho_and_seed_on_the_same_data():
    runs = correlation_runs(CONFIGS, [1.0, 0.0], steps=3, seeds=(0, 1), setup=SMALL, device="cpu")
    assert list(runs) == ["hard", "mmoe"] and all(list(by_rho) == [1.0, 0.0] for by_rho in runs.values())
    assert all(len(rs) == 2 and all(r.trainer.step_count == 3 for r in rs) for by_rho in runs.values()
               for rs in by_rho.values())
    for rho in (1.0, 0.0):
        for k, seed in enumerate((0, 1)):
            test = regression_split(rho, seed, SMALL)[1]
            assert all(torch.equal(runs[label][rho][k].test.x, test.x) for label in CONFIGS)
    means = correlation_sweep(CONFIGS, [1.0, 0.0], steps=3, seeds=(0, 1), setup=SMALL, device="cpu")
    for label, by_rho in runs.items():
        assert means[label] == pytest.approx({rho: sum(r.mse for r in rs) / 2 for rho, rs in by_rho.items()})


def test_gate_difference_is_the_mean_total_variation_between_the_tasks_gates():
    train, _ = regression_split(0.0, 0, SMALL)
    torch.manual_seed(0)
    model = MMoE.mlp(train.tasks, SMALL.dim, num_experts=3, expert_widths=(4,), tower_widths=())
    x = train.x[:20]
    d = gate_difference(model, x)
    g1, g2 = (torch.softmax(model.gates[n](x), 1) for n in train.tasks)
    assert d == pytest.approx((0.5 * (g1 - g2).abs().sum(1)).mean().item(), abs=1e-6) and 0 <= d <= 1
    with torch.no_grad():  # the same gate for both tasks: they read the same mixture
        model.gates["t2"].load_state_dict(model.gates["t1"].state_dict())
    assert gate_difference(model, x) == pytest.approx(0.0, abs=1e-7)
    assert model.training  # measuring does not leave the model in evaluation mode
    with pytest.raises(TypeError, match="needs a model with gates"):
        gate_difference(HardSharing.mlp(train.tasks, SMALL.dim, (4,)), x)
