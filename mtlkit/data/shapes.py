"""Procedural multi-attribute shapes: one coloured shape per small RGB image, ten labels each.

Every image (default 32×32 RGB, 8-bit levels) shows one object, a shape drawn
at a random position, size, rotation and colour on a grey background, plus a
few small white dots. Ten image-level tasks read different attributes of the
same picture, so some are closely related (``x``, ``y`` and ``quadrant``;
``shape``, ``size`` and ``area``) and some barely related (``background``,
``count``): a test bed for task grouping and transfer (survey §4), in the
spirit of dSprites (Matthey et al. 2017) and CLEVR-like attribute tasks.

=============  ===============  ===========================================================
task           kind             label
=============  ===============  ===========================================================
shape          class, 4         ellipse, square, triangle, cross (``SHAPES``)
color          class, 6         the object's colour, one of ``COLORS`` (exact RGB values)
size           regression (1,)  the shape's scale s in pixels, mapped to [0, 1]
x, y           regression (1,)  the object's centre, column / row, in [-1, 1]
quadrant       class, 4         which quarter holds the centre: 0 top-left, 1 top-right,
                                2 bottom-left, 3 bottom-right
orientation    regression (2,)  (cos kθ, sin kθ), θ the rotation, k the shape's order of
                                rotational symmetry (``SYMMETRY``), so the label is
                                well defined: rotating a square by 90° changes nothing
count          class, 4         the number of white 2×2 dots, 0 to 3
background     class, 3         the background grey level, one of ``BACKGROUNDS``
area           regression (1,)  the fraction of pixels the object covers, ×10
=============  ===============  ===========================================================

Drawing order: background, then the object, then the dots (dots sit in distinct
cells of a 4-pixel grid and may cover part of the object). Pixel noise
N(0, ``noise``²) is added last and the image is rounded to 8-bit levels, so a
cached set (stored as uint8) loads back bit-identical.

Rasterisation is vectorised: each pixel centre p is mapped to the shape's frame
u = R(-θ)(p - c) / s and tested against the shape's inequality, for every image
at once.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..tasks import TaskSet, classification, regression
from .base import MultiTaskDataset, cache_dir

SHAPES = ("ellipse", "square", "triangle", "cross")
SYMMETRY = (2, 4, 3, 4)
COLORS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 0.8, 0.0), "blue": (0.1, 0.3, 1.0),
          "yellow": (1.0, 0.9, 0.0), "magenta": (0.9, 0.0, 0.9), "cyan": (0.0, 0.9, 0.9)}
BACKGROUNDS = (0.0, 0.2, 0.4)
DOT_COLOR = 1.0
MAX_DOTS = 3
SIZE_RANGE = (4.0, 9.0)  # shape scale s in pixels, for 32×32 images (scaled with the image size)

TASKS = TaskSet([
    classification("shape", len(SHAPES)),
    classification("color", len(COLORS)),
    regression("size"),
    regression("x"),
    regression("y"),
    classification("quadrant", 4),
    regression("orientation", 2),
    classification("count", MAX_DOTS + 1),
    classification("background", len(BACKGROUNDS)),
    regression("area"),
])


def shape_masks(kind: Tensor, cx: Tensor, cy: Tensor, scale: Tensor, theta: Tensor, size: int) -> Tensor:
    """Boolean masks (N, size, size) of N shapes; all arguments are (N,) tensors, centres in pixels."""
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    px, py = coords.view(1, 1, -1), coords.view(1, -1, 1)
    dx, dy = px - cx.view(-1, 1, 1), py - cy.view(-1, 1, 1)
    cos, sin = torch.cos(theta).view(-1, 1, 1), torch.sin(theta).view(-1, 1, 1)
    s = scale.view(-1, 1, 1)
    u, v = (cos * dx + sin * dy) / s, (-sin * dx + cos * dy) / s
    ellipse = u ** 2 + (v / 0.55) ** 2 <= 1.0
    square = torch.maximum(u.abs(), v.abs()) <= 0.8
    # equilateral triangle inscribed in the unit circle: three half-planes n_k · (u, v) <= 1/2
    triangle = torch.ones_like(ellipse)
    for k in range(3):
        a = math.pi / 2 + 2 * math.pi * k / 3
        triangle &= (-math.cos(a) * u - math.sin(a) * v) <= 0.5
    cross = ((u.abs() <= 1.0) & (v.abs() <= 0.35)) | ((u.abs() <= 0.35) & (v.abs() <= 1.0))
    k = kind.view(-1, 1, 1)
    return torch.where(k == 0, ellipse, torch.where(k == 1, square, torch.where(k == 2, triangle, cross)))


def dot_masks(count: Tensor, size: int, generator: torch.Generator) -> Tensor:
    """Boolean masks (N, size, size) with ``count[i]`` 2×2 dots in distinct cells of a 4-pixel grid."""
    cells = size // 4
    n = count.shape[0]
    order = torch.rand(n, cells * cells, generator=generator).argsort(dim=1)
    chosen = torch.zeros(n, cells * cells, dtype=torch.bool)
    chosen.scatter_(1, order[:, :MAX_DOTS], (torch.arange(MAX_DOTS) < count.view(-1, 1)))
    grid = chosen.view(n, cells, cells)
    cell = torch.zeros(4, 4, dtype=torch.bool)
    cell[1:3, 1:3] = True
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    masks[:, :cells * 4, :cells * 4] = torch.kron(grid.to(torch.uint8), cell.to(torch.uint8)).bool()
    return masks


def _check(n: int, size: int, noise: float) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"number of images must be a positive int, got {n!r}")
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"image size must be an int >= 16 pixels, got {size!r}")
    if not 0.0 <= noise <= 0.5:
        raise ValueError(f"pixel noise must lie in [0, 0.5], got {noise}")


def make_shapes(n: int, seed: int = 0, size: int = 32, noise: float = 0.03) -> MultiTaskDataset:
    """n images (N, 3, size, size) in [0, 1] with the ten labels of :data:`TASKS` (see the module docstring)."""
    _check(n, size, noise)
    g = torch.Generator().manual_seed(seed)
    unit = lambda: torch.rand(n, generator=g)  # noqa: E731
    kind = torch.randint(len(SHAPES), (n,), generator=g)
    color = torch.randint(len(COLORS), (n,), generator=g)
    background = torch.randint(len(BACKGROUNDS), (n,), generator=g)
    count = torch.randint(MAX_DOTS + 1, (n,), generator=g)
    lo, hi = (v * size / 32 for v in SIZE_RANGE)
    scale_unit = unit()
    scale = lo + (hi - lo) * scale_unit
    margin = 1.15 * scale  # every shape fits in a disc of radius 1.15 s: it never leaves the image
    cx, cy = margin + (size - 2 * margin) * unit(), margin + (size - 2 * margin) * unit()
    theta = 2 * math.pi * unit()
    obj = shape_masks(kind, cx, cy, scale, theta, size)
    dots = dot_masks(count, size, g)

    palette = torch.tensor(list(COLORS.values()))
    img = torch.tensor(BACKGROUNDS)[background].view(n, 1, 1, 1).expand(n, 3, size, size).clone()
    img = torch.where(obj.unsqueeze(1), palette[color].view(n, 3, 1, 1), img)
    img = torch.where(dots.unsqueeze(1), torch.full_like(img, DOT_COLOR), img)
    img = img + noise * torch.randn(img.shape, generator=g)
    img = (img.clamp(0, 1) * 255).round() / 255

    k = torch.tensor(SYMMETRY)[kind].float()
    centre = 2 * torch.stack([cx, cy]) / size - 1
    targets = {
        "shape": kind, "color": color, "size": scale_unit.view(-1, 1),
        "x": centre[0].view(-1, 1), "y": centre[1].view(-1, 1),
        "quadrant": (cx >= size / 2).long() + 2 * (cy >= size / 2).long(),
        "orientation": torch.stack([torch.cos(k * theta), torch.sin(k * theta)], dim=1),
        "count": count, "background": background,
        "area": 10 * obj.float().mean(dim=(1, 2)).view(-1, 1),
    }
    return MultiTaskDataset(img, targets, TASKS)


def shapes(n_train: int = 8000, n_test: int = 2000, seed: int = 0, size: int = 32, noise: float = 0.03,
           cache: bool = True) -> tuple[MultiTaskDataset, MultiTaskDataset]:
    """Seeded train and test sets (independent draws), cached under :func:`cache_dir` as uint8 images."""
    _check(n_train, size, noise)
    _check(n_test, size, noise)
    path = cache_dir() / f"shapes_{n_train}_{n_test}_{seed}_{size}_{noise:g}.pt"
    if cache and path.exists():
        blob = torch.load(path, weights_only=True)
        return tuple(MultiTaskDataset(b["x"].float() / 255, dict(b["y"]), TASKS)  # type: ignore[return-value]
                     for b in blob)
    train = make_shapes(n_train, seed, size, noise)
    test = make_shapes(n_test, seed + 10_000, size, noise)
    if cache:
        torch.save([{"x": (d.x * 255).round().to(torch.uint8), "y": d.targets} for d in (train, test)], path)
    return train, test


__all__ = ["BACKGROUNDS", "COLORS", "SHAPES", "SYMMETRY", "TASKS", "dot_masks", "make_shapes", "shape_masks",
           "shapes"]
