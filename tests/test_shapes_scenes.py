import math

import pytest
import torch

from mtlkit.data import cache_dir
from mtlkit.data import scenes as sc
from mtlkit.data.shapes import BACKGROUNDS, COLORS, DOT_COLOR, SHAPES, TASKS, make_shapes, shape_masks, shapes
from mtlkit.tasks import LOSSES, Task


# -- shapes -------------------------------------------------------------------------
def test_shapes_are_seeded_and_have_every_task():
    a, b = make_shapes(64, seed=3), make_shapes(64, seed=3)
    assert torch.equal(a.x, b.x) and all(torch.equal(a.targets[n], b.targets[n]) for n in TASKS)
    assert not torch.equal(a.x, make_shapes(64, seed=4).x)
    assert a.x.shape == (64, 3, 32, 32) and 0 <= a.x.min() and a.x.max() <= 1
    assert len(a.tasks) == 10
    for name, task in a.tasks.items():
        y = a.targets[name]
        if task.kind == "classification":
            assert y.dtype == torch.int64 and y.shape == (64,) and 0 <= y.min() and y.max() < task.out_dim
        else:
            assert y.dtype == torch.float32 and y.shape == (64, task.out_dim)


def test_shape_labels_match_the_pixels():
    d = make_shapes(200, seed=1, noise=0.0)
    palette = (torch.tensor(list(COLORS.values())) * 255).round() / 255  # 8-bit levels, as drawn
    img = d.x.permute(0, 2, 3, 1)  # (N, H, W, 3)
    for i in range(len(d)):
        bg = BACKGROUNDS[d.targets["background"][i]]
        colours = img[i].reshape(-1, 3)
        is_bg = (colours == bg).all(1)
        is_dot = (colours == DOT_COLOR).all(1)
        obj = colours[~is_bg & ~is_dot]
        assert len(obj) > 0 and torch.equal(obj, palette[d.targets["color"][i]].expand_as(obj))
        assert is_dot.sum().item() == 4 * d.targets["count"][i].item()  # 2x2 dots, drawn last, never covered
        area = 10 * (~is_bg).float().mean().item()
        assert area >= d.targets["area"][i].item() - 1e-6  # dots may add to the non-background pixels


def test_position_quadrant_and_orientation_labels_agree():
    d = make_shapes(300, seed=2)
    x, y, q = d.targets["x"][:, 0], d.targets["y"][:, 0], d.targets["quadrant"]
    assert x.abs().max() < 1 and y.abs().max() < 1
    assert torch.equal(q, (x >= 0).long() + 2 * (y >= 0).long())
    assert torch.allclose(d.targets["orientation"].norm(dim=1), torch.ones(300), atol=1e-5)
    assert 0 <= d.targets["size"].min() and d.targets["size"].max() <= 1


def test_shape_masks_are_the_right_shape_and_rotation_invariant_under_symmetry():
    n = len(SHAPES)
    kind, c = torch.arange(n), torch.full((n,), 16.0)
    masks = shape_masks(kind, c, c, torch.full((n,), 8.0), torch.zeros(n), 32)
    assert all(masks[k, 16, 16] for k in range(n)) and not masks[:, 0, 0].any()
    # a square turned by 90 degrees and a cross turned by 90 degrees cover the same pixels
    turned = shape_masks(kind, c, c, torch.full((n,), 8.0), torch.full((n,), math.pi / 2), 32)
    assert (masks[1] ^ turned[1]).sum() <= 2 and (masks[3] ^ turned[3]).sum() <= 2
    # the ellipse is not symmetric under a quarter turn
    assert (masks[0] ^ turned[0]).sum() > 20


def test_shapes_cache_round_trips_with_weights_only():
    train, test = shapes(40, 20, seed=5)
    path = cache_dir() / "shapes_40_20_5_32_0.03.pt"
    assert path.exists()
    blob = torch.load(path, weights_only=True)
    assert blob[0]["x"].dtype == torch.uint8
    again, again_test = shapes(40, 20, seed=5)
    assert torch.equal(again.x, train.x) and torch.equal(again_test.x, test.x)
    assert all(torch.equal(again.targets[n], train.targets[n]) for n in TASKS)
    assert not torch.equal(train.x[:20], test.x)


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, "number of images must be a positive int, got 0"),
    ({"n": 4, "size": 8}, "image size must be an int >= 16 pixels, got 8"),
    ({"n": 4, "noise": -1.0}, r"pixel noise must lie in \[0, 0.5\], got -1.0"),
])
def test_shapes_bad_arguments_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_shapes(**kwargs)


# -- scenes -------------------------------------------------------------------------
def test_scenes_are_seeded_and_shaped():
    a, b = sc.make_scenes(16, seed=2), sc.make_scenes(16, seed=2)
    assert torch.equal(a.x, b.x) and all(torch.equal(a.targets[n], b.targets[n]) for n in sc.TASKS)
    assert not torch.equal(a.x, sc.make_scenes(16, seed=3).x)
    t = a.targets
    assert a.x.shape == (16, 3, 32, 32)
    assert t["segmentation"].shape == (16, 32, 32) and t["segmentation"].dtype == torch.int64
    assert t["depth"].shape == (16, 1, 32, 32) and t["normals"].shape == (16, 3, 32, 32)
    assert set(t["segmentation"].unique().tolist()) <= set(range(len(sc.CLASSES)))


def test_normals_are_unit_and_face_the_camera():
    d = sc.make_scenes(32, seed=0)
    n = d.targets["normals"]
    assert torch.allclose(n.norm(dim=1), torch.ones(32, 32, 32), atol=1e-5)
    assert (n[:, 2] < 0).all()


def _interior(seg: torch.Tensor) -> torch.Tensor:
    """Pixels whose 3x3 neighbourhood lies in one segment (finite differences are valid there)."""
    pad = torch.nn.functional.pad(seg.float().unsqueeze(1), (1, 1, 1, 1), mode="replicate")
    patches = torch.nn.functional.unfold(pad, 3).view(seg.shape[0], 9, *seg.shape[1:])
    return (patches == seg.unsqueeze(1)).all(1)


def test_normals_are_consistent_with_depth_gradients():
    d = sc.make_scenes(64, seed=1, size=48)
    depth, normals, seg = d.targets["depth"][:, 0], d.targets["normals"], d.targets["segmentation"]
    step = 2 / 48
    gx = (depth[:, 1:-1, 2:] - depth[:, 1:-1, :-2]) / (2 * step)
    gy = (depth[:, 2:, 1:-1] - depth[:, :-2, 1:-1]) / (2 * step)
    est = torch.stack([gx, gy, -torch.ones_like(gx)], 1)
    angle = sc.angle_errors(est, normals[:, :, 1:-1, 1:-1])
    inside = _interior(seg)[:, 1:-1, 1:-1]
    assert inside.float().mean() > 0.7
    errs = angle[inside]
    assert errs.median() < 1.0 and (errs < 10).float().mean() > 0.95
    ground = inside & (seg[:, 1:-1, 1:-1] == 0)
    assert angle[ground].max() < 0.1  # the plane's normal is exactly its depth gradient


def test_segmentation_follows_depth_ordering():
    g = torch.Generator().manual_seed(4)
    params = sc.sample_params(64, g)
    out = sc.render(params, 32, noise=0.0)
    x, y = sc.pixel_grid(32)
    plane = sc.ground_depth(params["ground"], x, y)
    seg, depth = out["segmentation"], out["depth"][:, 0]
    assert torch.allclose(depth[seg == 0], plane.expand_as(depth)[seg == 0])  # ground pixels lie on the plane
    assert (depth[seg > 0] < plane.expand_as(depth)[seg > 0]).all()  # objects occlude the plane
    # every object class seen in a scene is one of that scene's objects
    for i in range(64):
        assert set(seg[i].unique().tolist()) <= {0, *params["kind"][i].tolist()}


def test_one_sphere_has_the_analytic_depth():
    g = torch.Generator().manual_seed(0)
    p = sc.sample_params(1, g, max_objects=1)
    p["kind"][:] = 1
    p["center"][:] = 0.0625  # a pixel centre of a 16-pixel image: x = (8 + 0.5) / 16 * 2 - 1
    p["radius"][:] = 0.4
    out = sc.render(p, 16, noise=0.0)
    d0, a, b = p["ground"][0].tolist()
    expected = d0 + (a + b) * 0.0625 - 0.8
    assert out["segmentation"][0, 8, 8] == 1 and out["depth"][0, 0, 8, 8].item() == pytest.approx(expected, abs=1e-5)
    assert torch.allclose(out["normals"][0, :, 8, 8], torch.tensor([0.0, 0.0, -1.0]), atol=1e-5)


def test_scene_metrics_and_cosine_loss():
    target = torch.tensor([[[0, 1], [1, 2]]])
    logits = torch.nn.functional.one_hot(torch.tensor([[[0, 1], [2, 2]]]), 3).permute(0, 3, 1, 2).float()
    # class 0: IoU 1; class 1: 1/2; class 2: 1/2
    assert sc.mean_iou(logits, target).item() == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert sc.PIXEL_ACCURACY.fn(logits, target).item() == pytest.approx(0.75)
    assert sc.MIOU.higher_is_better and sc.PIXEL_ACCURACY.higher_is_better and sc.WITHIN_11.higher_is_better
    assert not (sc.ABS_ERR.higher_is_better or sc.REL_ERR.higher_is_better or sc.MEAN_ANGLE.higher_is_better)
    n = torch.tensor([0.0, 0.0, -1.0]).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    tilted = torch.tensor([1.0, 0.0, -1.0]).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    assert sc.mean_angle(3 * n, n).item() == pytest.approx(0.0, abs=1e-3)
    assert sc.mean_angle(tilted, n).item() == pytest.approx(45.0, abs=1e-3)
    assert LOSSES["cosine"](tilted, n).item() == pytest.approx(1 - math.sqrt(0.5), abs=1e-6)
    task = Task("normals", "regression", 3, "cosine")
    assert task.loss(n, n).item() == pytest.approx(0.0, abs=1e-6)


def test_scenes_cache_round_trips_with_weights_only():
    train, test = sc.scenes(12, 6, seed=7)
    path = cache_dir() / "scenes_12_6_7_32_3_0.02.pt"
    blob = torch.load(path, weights_only=True)
    assert blob[0]["x"].dtype == torch.uint8
    again, _ = sc.scenes(12, 6, seed=7)
    assert torch.equal(again.x, train.x)
    assert all(torch.equal(again.targets[n], train.targets[n]) for n in sc.TASKS)
    assert again.targets["segmentation"].dtype == torch.int64


@pytest.mark.parametrize("kwargs, message", [
    ({"n": -1}, "number of scenes must be a positive int, got -1"),
    ({"n": 2, "size": 4}, "image size must be an int >= 8 pixels, got 4"),
    ({"n": 2, "max_objects": 0}, "max_objects must be a positive int, got 0"),
    ({"n": 2, "noise": 0.9}, r"pixel noise must lie in \[0, 0.5\], got 0.9"),
])
def test_scenes_bad_arguments_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sc.make_scenes(**kwargs)
