"""Procedural dense scenes: a ground plane and a few objects, with segmentation, depth and normals.

A stand-in for NYU-v2 / Cityscapes-style dense prediction (survey §5) that fits
on a laptop: every pixel has a semantic class, a depth and a surface normal,
all exactly consistent because they come from one small piece of geometry.

Geometry (orthographic camera looking along +depth; pixel centres at
x, y ∈ (-1, 1), x to the right, y down):

* ground plane: d_g(x, y) = d0 + a x + b y, normal ∝ (a, b, -1);
* sphere (centre (ox, oy), radius s, resting on the plane):
  d = d_g(o) - s - sqrt(s² - ρ²) for ρ² = (x-ox)² + (y-oy)² < s², normal = (x-ox, y-oy, -sqrt(s² - ρ²)) / s;
* box (square footprint of half-width s rotated by φ, height h): top face d = d_g(o) - h, normal (0, 0, -1);
* pyramid (same footprint, apex height h): d = d_g(o) - h (1 - max(|u|, |v|) / s), u, v the
  rotated coordinates; four planar faces.

Every surface z = d(x, y) has normal n ∝ (∂d/∂x, ∂d/∂y, -1): the normals are
the depth map's gradients, pointing towards the camera. A z-buffer keeps the
nearest surface per pixel, so the segmentation follows the depth ordering.

The RGB image is Lambertian shading, albedo × (0.3 + 0.7 max(0, n·l)), with a
random light l per scene and a random colour per object (colour does not give
the class away), plus pixel noise, rounded to 8-bit levels.

Classes (``CLASSES``): 0 ground, 1 sphere, 2 box, 3 pyramid.
Tasks: ``segmentation`` (logits (B, 4, H, W), targets (B, H, W); scored by mIoU and
pixel accuracy), ``depth`` ((B, 1, H, W), L1 loss; absolute and relative error),
``normals`` ((B, 3, H, W) unit vectors, cosine loss; mean angle error in degrees
and the fraction of pixels within 11.25°).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..tasks import Metric, Task, TaskSet
from .base import MultiTaskDataset, cache_dir

CLASSES = ("ground", "sphere", "box", "pyramid")
OBJECT_COLORS = ((0.9, 0.2, 0.2), (0.2, 0.7, 0.2), (0.2, 0.4, 0.9), (0.9, 0.8, 0.2), (0.8, 0.3, 0.8),
                 (0.2, 0.8, 0.8))


# -- metrics --------------------------------------------------------------------
def mean_iou(logits: Tensor, target: Tensor) -> Tensor:
    """Mean over classes of |pred ∩ target| / |pred ∪ target|, over classes present in either."""
    pred = logits.argmax(dim=1)
    ious = []
    for c in range(logits.shape[1]):
        p, t = pred == c, target == c
        union = (p | t).sum()
        if union > 0:
            ious.append((p & t).sum() / union)
    return torch.stack(ious).mean()


def pixel_accuracy(logits: Tensor, target: Tensor) -> Tensor:
    return (logits.argmax(dim=1) == target).float().mean()


def abs_error(pred: Tensor, target: Tensor) -> Tensor:
    return (pred - target).abs().mean()


def rel_error(pred: Tensor, target: Tensor) -> Tensor:
    return ((pred - target).abs() / target.abs().clamp_min(1e-6)).mean()


def angle_errors(pred: Tensor, target: Tensor) -> Tensor:
    """Per-pixel angle (degrees) between predicted and true normals; pred need not be unit length."""
    cos = torch.nn.functional.cosine_similarity(pred, target, dim=1, eps=1e-8)
    return torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))


def mean_angle(pred: Tensor, target: Tensor) -> Tensor:
    return angle_errors(pred, target).mean()


def within_11(pred: Tensor, target: Tensor) -> Tensor:
    return (angle_errors(pred, target) < 11.25).float().mean()


MIOU = Metric("miou", mean_iou, higher_is_better=True)
PIXEL_ACCURACY = Metric("pixel_acc", pixel_accuracy, higher_is_better=True)
ABS_ERR = Metric("abs_err", abs_error, higher_is_better=False)
REL_ERR = Metric("rel_err", rel_error, higher_is_better=False)
MEAN_ANGLE = Metric("mean_angle", mean_angle, higher_is_better=False)
WITHIN_11 = Metric("within_11.25", within_11, higher_is_better=True)

TASKS = TaskSet([
    Task("segmentation", "classification", len(CLASSES), "cross_entropy", (MIOU, PIXEL_ACCURACY)),
    Task("depth", "regression", 1, "l1", (ABS_ERR, REL_ERR)),
    Task("normals", "regression", 3, "cosine", (MEAN_ANGLE, WITHIN_11)),
])


# -- scene parameters -------------------------------------------------------------
def sample_params(n: int, generator: torch.Generator, max_objects: int = 3) -> dict[str, Tensor]:
    """Random scene parameters for n scenes; object slots with ``kind == 0`` are empty."""
    def u(*shape, lo=0.0, hi=1.0):
        return lo + (hi - lo) * torch.rand(*shape, generator=generator)
    k = max_objects
    count = torch.randint(1, k + 1, (n,), generator=generator)
    kind = torch.randint(1, len(CLASSES), (n, k), generator=generator)
    kind = torch.where(torch.arange(k) < count.view(-1, 1), kind, torch.zeros_like(kind))
    light = torch.stack([u(n, lo=-0.8, hi=0.8), u(n, lo=-0.8, hi=0.8), -torch.ones(n)], dim=1)
    return {
        "ground": torch.stack([u(n, lo=1.8, hi=2.2), u(n, lo=-0.15, hi=0.15), u(n, lo=0.1, hi=0.4)], dim=1),
        "kind": kind,
        "center": u(n, k, 2, lo=-0.7, hi=0.7),
        "radius": u(n, k, lo=0.2, hi=0.4),
        "height": u(n, k, lo=0.15, hi=0.45),
        "angle": u(n, k, hi=math.pi / 2),
        "color": torch.tensor(OBJECT_COLORS)[torch.randint(len(OBJECT_COLORS), (n, k), generator=generator)],
        "ground_color": u(n, 1, lo=0.45, hi=0.75) + u(n, 3, lo=-0.08, hi=0.08),
        "light": light / light.norm(dim=1, keepdim=True),
    }


def pixel_grid(size: int) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates x (1, 1, size), y (1, size, 1) in (-1, 1)."""
    c = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    return c.view(1, 1, -1), c.view(1, -1, 1)


def ground_depth(ground: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """d0 + a x + b y for ground (N, 3) parameters, broadcast over x and y."""
    d0, a, b = (ground[:, i].view(-1, *([1] * (x.dim() - 1))) for i in range(3))
    return d0 + a * x + b * y


def _object_surface(p: dict[str, Tensor], j: int, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Depth (N, H, W) of object slot j (inf off the object) and its gradients ∂d/∂x, ∂d/∂y."""
    kind = p["kind"][:, j].view(-1, 1, 1)
    ox, oy = p["center"][:, j, 0].view(-1, 1, 1), p["center"][:, j, 1].view(-1, 1, 1)
    s, h = p["radius"][:, j].view(-1, 1, 1), p["height"][:, j].view(-1, 1, 1)
    base = ground_depth(p["ground"], ox, oy)
    dx, dy = x - ox, y - oy
    # sphere
    rho2 = dx ** 2 + dy ** 2
    cap = (s ** 2 - rho2).clamp_min(1e-12).sqrt()
    sphere_d = base - s - cap
    # box and pyramid share a rotated square footprint; max(|u|, |v|) < s inside it
    cos, sin = torch.cos(p["angle"][:, j]).view(-1, 1, 1), torch.sin(p["angle"][:, j]).view(-1, 1, 1)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    m = torch.maximum(u.abs(), v.abs())
    on_u = u.abs() >= v.abs()
    slope = torch.where(kind == 3, h / s, torch.zeros_like(s))  # box tops are flat
    square_d = torch.where(kind == 2, base - h, base - h * (1 - m / s))
    su, sv = torch.sign(u) * slope, torch.sign(v) * slope
    square_gx = torch.where(on_u, su * cos, -sv * sin)
    square_gy = torch.where(on_u, su * sin, sv * cos)
    sphere = kind == 1
    inside = torch.where(sphere, rho2 < s ** 2, (m < s) & (kind > 1))
    depth = torch.where(inside, torch.where(sphere, sphere_d, square_d), math.inf)
    return depth, torch.where(sphere, dx / cap, square_gx), torch.where(sphere, dy / cap, square_gy)


def _normal(gx: Tensor, gy: Tensor) -> Tensor:
    """Unit normal (N, 3, H, W) of a surface with depth gradients gx, gy: ∝ (gx, gy, -1)."""
    inv = torch.rsqrt(gx ** 2 + gy ** 2 + 1)
    return torch.stack([gx * inv, gy * inv, -inv], dim=1)


def render(params: dict[str, Tensor], size: int = 32, noise: float = 0.02,
           generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Render scenes: image (N, 3, H, W), segmentation (N, H, W) int64, depth (N, 1, H, W), normals (N, 3, H, W)."""
    x, y = pixel_grid(size)
    n = params["ground"].shape[0]
    gd = ground_depth(params["ground"], x, y).expand(n, size, size)
    a, b = params["ground"][:, 1].view(-1, 1, 1), params["ground"][:, 2].view(-1, 1, 1)
    surfaces = [(gd, a.expand_as(gd), b.expand_as(gd))]
    surfaces += [_object_surface(params, j, x, y) for j in range(params["kind"].shape[1])]
    depths, gxs, gys = (torch.stack(t, 1) for t in zip(*surfaces))
    depth, nearest = depths.min(dim=1, keepdim=True)
    normal = _normal(gxs.gather(1, nearest)[:, 0], gys.gather(1, nearest)[:, 0])
    classes = torch.cat([torch.zeros(n, 1, dtype=torch.long), params["kind"]], dim=1)
    seg = classes.gather(1, nearest.view(n, -1)).view(n, size, size)
    colors = torch.cat([params["ground_color"].clamp(0, 1).unsqueeze(1), params["color"]], dim=1)
    albedo = colors.gather(1, nearest.view(n, -1, 1).expand(-1, -1, 3)).transpose(1, 2).reshape(n, 3, size, size)
    shade = (normal * params["light"].view(n, 3, 1, 1)).sum(1, keepdim=True).clamp_min(0)
    img = albedo * (0.3 + 0.7 * shade)
    if noise > 0:
        img = img + noise * torch.randn(img.shape, generator=generator)
    img = (img.clamp(0, 1) * 255).round() / 255
    return {"image": img, "segmentation": seg, "depth": depth, "normals": normal}


# -- datasets -------------------------------------------------------------------
def _check(n: int, size: int, max_objects: int, noise: float) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"number of scenes must be a positive int, got {n!r}")
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"image size must be an int >= 8 pixels, got {size!r}")
    if not isinstance(max_objects, int) or max_objects < 1:
        raise ValueError(f"max_objects must be a positive int, got {max_objects!r}")
    if not 0.0 <= noise <= 0.5:
        raise ValueError(f"pixel noise must lie in [0, 0.5], got {noise}")


def make_scenes(n: int, seed: int = 0, size: int = 32, max_objects: int = 3, noise: float = 0.02
                ) -> MultiTaskDataset:
    """n rendered scenes with the three dense tasks of :data:`TASKS`."""
    _check(n, size, max_objects, noise)
    g = torch.Generator().manual_seed(seed)
    out = render(sample_params(n, g, max_objects), size, noise, g)
    return MultiTaskDataset(out["image"], {k: out[k] for k in TASKS}, TASKS)


def scenes(n_train: int = 4000, n_test: int = 1000, seed: int = 0, size: int = 32, max_objects: int = 3,
           noise: float = 0.02, cache: bool = True) -> tuple[MultiTaskDataset, MultiTaskDataset]:
    """Seeded train and test sets (independent draws), cached under :func:`cache_dir`."""
    for n in (n_train, n_test):
        _check(n, size, max_objects, noise)
    path = cache_dir() / f"scenes_{n_train}_{n_test}_{seed}_{size}_{max_objects}_{noise:g}.pt"
    if cache and path.exists():
        blob = torch.load(path, weights_only=True)
        return tuple(MultiTaskDataset(b["x"].float() / 255, {"segmentation": b["segmentation"].long(),  # type: ignore
                                                             "depth": b["depth"], "normals": b["normals"]}, TASKS)
                     for b in blob)
    train = make_scenes(n_train, seed, size, max_objects, noise)
    test = make_scenes(n_test, seed + 10_000, size, max_objects, noise)
    if cache:
        torch.save([{"x": (d.x * 255).round().to(torch.uint8),
                     "segmentation": d.targets["segmentation"].to(torch.uint8),
                     "depth": d.targets["depth"], "normals": d.targets["normals"]} for d in (train, test)], path)
    return train, test


__all__ = ["ABS_ERR", "CLASSES", "MEAN_ANGLE", "MIOU", "PIXEL_ACCURACY", "REL_ERR", "TASKS", "WITHIN_11",
           "angle_errors", "ground_depth", "make_scenes", "mean_iou", "pixel_grid", "render", "sample_params",
           "scenes"]
