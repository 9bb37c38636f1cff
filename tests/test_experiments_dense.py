import torch

from mtlkit.data.scenes import TASKS
from mtlkit.experiments.dense import PADNetWithoutDistillation
from mtlkit.models import PADNet


def _pair(seed: int = 0):
    torch.manual_seed(seed)
    full = PADNet(TASKS, width=8)
    torch.manual_seed(seed)
    cut = PADNetWithoutDistillation(TASKS, width=8)
    return full.eval(), cut.eval()


def test_same_seed_gives_the_same_weights():
    full, cut = _pair()
    assert all(torch.equal(a, b) for a, b in zip(full.state_dict().values(), cut.state_dict().values()))


def test_final_predictions_ignore_the_other_tasks_messages():
    full, cut = _pair()
    with torch.no_grad():
        for k in TASKS:
            for conv in full.messages[k].values():
                conv.weight.normal_(0, 0.5)
            for conv in cut.messages[k].values():
                conv.weight.normal_(0, 0.5)
    x = torch.randn(2, 3, 16, 16)
    out_full, out_cut = full(x).outputs, cut(x).outputs
    # with messages, PAD-Net's outputs change; without, they are the heads applied to the task features alone
    assert not torch.allclose(out_full["depth"], out_cut["depth"])
    shared = cut.trunk(x)
    for n in TASKS:
        assert torch.allclose(out_cut[n], cut.heads[n](cut.branches[n](shared)), atol=1e-6)
        assert torch.allclose(cut.intermediate[n], full.intermediate[n], atol=1e-6)


def test_messages_and_gates_get_no_gradient():
    _, cut = _pair()
    cut.train()
    out = cut(torch.randn(2, 3, 16, 16))
    (sum(o.sum() for o in out.outputs.values()) + sum(p.sum() for p in cut.intermediate.values())).backward()
    idle = [p for k in TASKS for p in [*cut.gates[k].parameters(), *cut.messages[k].parameters()]]
    assert idle and all(p.grad is None for p in idle)
    assert all(p.grad is not None for p in cut.trunk.parameters())
