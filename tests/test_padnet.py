import pytest
import torch

from mtlkit.data.scenes import TASKS as SCENE_TASKS
from mtlkit.data.scenes import make_scenes
from mtlkit.models import MODELS, DenseHardSharing, MultiTaskModel, PADNet
from mtlkit.train import Trainer

SHAPES = {"segmentation": (2, 4, 16, 16), "depth": (2, 1, 16, 16), "normals": (2, 3, 16, 16)}


@pytest.mark.parametrize("name", ["dense_hard", "padnet"])
def test_dense_models_predict_every_task_per_pixel(name):
    model = MODELS[name].build(SCENE_TASKS, (3, 16, 16), width=8)
    out = model(torch.randn(2, 3, 16, 16))
    assert {n: tuple(o.shape) for n, o in out.outputs.items()} == SHAPES
    assert out.z.requires_grad and out.z.shape[0] == 2


@pytest.mark.parametrize("cls", [DenseHardSharing, PADNet])
def test_dense_models_follow_the_sharing_contract(cls):
    model = cls(SCENE_TASKS, width=8)
    with torch.no_grad():  # generic weights: PADNet's zero-initialised messages would hide their gates' gradients
        for p in model.parameters():
            p.normal_(0, 0.2)
    shared = {id(p) for p in model.shared_parameters()}
    per_task = [{id(p) for p in model.task_parameters(n)} for n in SCENE_TASKS]
    assert shared and all(per_task)
    assert sum(len(s) for s in per_task) + len(shared) == len(list(model.parameters()))
    assert not any(a & b for i, a in enumerate(per_task) for b in per_task[i + 1:])
    out = model(torch.randn(2, 3, 16, 16))
    aux = model.intermediate["depth"].sum() if isinstance(model, PADNet) else 0  # deep supervision is depth's too
    (out.outputs["depth"].sum() + aux).backward()
    touched = {id(p) for p in model.parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    depth = per_task[SCENE_TASKS.index("depth")]
    assert depth <= touched and touched <= shared | depth
    # every shared parameter lies upstream of z, so gradients through z reach all of them (MGDA-UB)
    model.zero_grad(set_to_none=True)
    out = model(torch.randn(2, 3, 16, 16))
    out.z.backward(torch.randn_like(out.z), inputs=model.shared_parameters())
    assert all(p.grad is not None for p in model.shared_parameters())


def test_padnet_distillation_mixes_tasks_and_deep_supervision_is_per_task():
    model = PADNet(SCENE_TASKS, width=8, aux_weight=0.5)
    data = make_scenes(4, seed=0, size=16)
    out = model(data.x)
    assert {n: tuple(p.shape) for n, p in model.intermediate.items()} == {k: (4, *v[1:]) for k, v in SHAPES.items()}
    aux = model.auxiliary_losses(data.targets)
    expected = 0.5 * SCENE_TASKS.losses(model.intermediate, data.targets)
    assert aux.shape == (3,) and torch.allclose(aux, expected)
    # messages start small (distillation is close to the identity); task t's features reach task k through them
    feats = dict(zip(SCENE_TASKS, out.z.detach().split(model.task_width, dim=1)))
    distilled = model.distill(feats)
    assert all((distilled[n] - feats[n]).abs().max() < 0.1 * feats[n].abs().max() for n in SCENE_TASKS)
    out.outputs["depth"].sum().backward()
    assert model.messages["depth"]["segmentation"].weight.grad.abs().sum() > 0
    assert model.branches["segmentation"][0].weight.grad.abs().sum() > 0
    assert model.aux_heads["segmentation"].weight.grad is None
    with pytest.raises(ValueError, match="aux_weight .* must be >= 0, got -1"):
        PADNet(SCENE_TASKS, aux_weight=-1)


def test_trainer_adds_auxiliary_losses_and_keeps_plain_models_unchanged():
    data = make_scenes(8, seed=1, size=16)
    torch.manual_seed(0)
    trainer = Trainer(PADNet(SCENE_TASKS, width=8), device="cpu")
    trainer.model.eval()
    losses, out = trainer.losses(data.x, data.targets)
    final = SCENE_TASKS.losses(out.outputs, data.targets)
    assert torch.allclose(losses, final + SCENE_TASKS.losses(trainer.model.intermediate, data.targets))
    plain = Trainer(DenseHardSharing(SCENE_TASKS, width=8), device="cpu")
    assert plain.model.auxiliary_losses(data.targets) is None
    losses, out = plain.losses(data.x, data.targets)
    assert torch.allclose(losses, SCENE_TASKS.losses(out.outputs, data.targets))


@pytest.mark.parametrize("name", ["dense_hard", "padnet"])
def test_a_few_steps_lower_every_task_loss(name):
    torch.manual_seed(0)
    data = make_scenes(32, seed=2, size=16)
    trainer = Trainer(MODELS[name].build(SCENE_TASKS, (3, 16, 16), width=8), lr=3e-3, batch_size=32, device="cpu")
    first = trainer.train_step(data.x, data.targets).losses
    for _ in range(25):
        last = trainer.train_step(data.x, data.targets).losses
    assert (last < first).all(), f"{name}: losses {first.tolist()} -> {last.tolist()}"


def test_bad_image_shapes_are_explained():
    model = PADNet(SCENE_TASKS, width=8)
    with pytest.raises(ValueError, match=r"expects images of shape \(B, 3, H, W\) with H and W divisible by 4, "
                                         r"got \(2, 3, 15, 16\)"):
        model(torch.randn(2, 3, 15, 16))
    with pytest.raises(RuntimeError, match="needs a forward pass first"):
        PADNet(SCENE_TASKS, width=8).auxiliary_losses({})
    assert isinstance(model, MultiTaskModel)


def test_dense_viewer_redraws_on_architecture_and_sample():
    from mtlkit.widgets.dense import DenseViewer
    data = make_scenes(3, seed=0, size=16)
    fake = {n: {"segmentation": torch.randn(3, 4, 16, 16), "depth": data.targets["depth"] * 1.1,
                "normals": data.targets["normals"]} for n in ("a", "b")}
    viewer = DenseViewer(data.x, data.targets, fake)
    assert len(viewer.figure.data) == 7
    viewer.sample.value = 2
    assert torch.equal(torch.tensor(viewer.figure.data[1].z), data.targets["segmentation"][2])
    viewer.arch.value = "b"
    assert torch.allclose(torch.tensor(viewer.figure.data[4].z), data.targets["depth"][2, 0] * 1.1)
    with pytest.raises(ValueError, match="at least one architecture"):
        DenseViewer(data.x, data.targets, {})


def test_displaying_the_dense_viewer_sends_the_sample_drawn_before(monkeypatch):
    import IPython.display
    from mtlkit.widgets.dense import DenseViewer
    data = make_scenes(2, seed=0, size=16)
    viewer = DenseViewer(data.x, data.targets, {"a": dict(data.targets, segmentation=torch.randn(2, 4, 16, 16))})
    viewer.sample.value = 1
    assert viewer.figure._widget_data == [], "plotly has not sent the traces yet"
    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    viewer._ipython_display_()
    assert len(shown) == 1 and viewer.figure in shown[0].children
    sent = viewer.figure._widget_data
    assert [t["uid"] for t in sent] == [t.uid for t in viewer.figure.data] and len(sent) == 7
    assert torch.equal(torch.tensor(sent[1]["z"]), data.targets["segmentation"][1])
