import gzip
import struct

import numpy as np
import pytest
import torch

from mtlkit.data import correlated_regression, load_digits, multimnist, read_idx, task_weights, toy_losses
from mtlkit.data.multimnist import make_multimnist, overlay
from mtlkit.data.toy2d import STARTS


@pytest.mark.parametrize("rho", [-0.5, 0.0, 0.3, 0.9, 1.0])
def test_task_weights_have_the_requested_cosine(rho):
    W = task_weights(rho, dim=30, num_tasks=3, scale=2.0, generator=torch.Generator().manual_seed(1))
    cos = torch.nn.functional.cosine_similarity(W[0], W[1:], dim=1)
    assert torch.allclose(cos, torch.full((2,), rho), atol=1e-5)
    assert torch.allclose(W.norm(dim=1), torch.full((3,), 2.0), atol=1e-5)


def test_label_correlation_rises_with_rho():
    corr = []
    for rho in (0.0, 0.5, 0.95):
        d = correlated_regression(4000, rho, dim=20, seed=3)
        corr.append(float(torch.corrcoef(torch.cat([d.targets["t1"], d.targets["t2"]], 1).T)[0, 1]))
    assert corr[0] < corr[1] < corr[2]
    assert abs(corr[0]) < 0.2 and corr[2] > 0.8


def test_correlated_regression_is_seeded_and_validates():
    a, b = correlated_regression(50, 0.5, seed=7), correlated_regression(50, 0.5, seed=7)
    assert torch.equal(a.x, b.x) and torch.equal(a.targets["t2"], b.targets["t2"])
    assert not torch.equal(a.x, correlated_regression(50, 0.5, seed=8).x)
    with pytest.raises(ValueError, match=r"rho must lie in \[-1, 1\], got 1.5"):
        correlated_regression(10, 1.5)


def test_toy_landscape_matches_its_formula_and_batches():
    theta = torch.tensor([[1.0, 2.0], [-3.0, -4.0]])
    f = toy_losses(theta)
    x1, x2 = 1.0, 2.0
    c1 = max(np.tanh(x2 / 2), 0)
    f1 = c1 * (np.log(abs(0.5 * (-x1 - 7) - np.tanh(-x2))) + 6)
    f2 = c1 * (np.log(abs(0.5 * (-x1 + 3) + np.tanh(-x2) + 2)) + 6)
    assert f.shape == (2, 2)
    assert f[0].tolist() == pytest.approx([f1, f2], rel=1e-5)
    assert torch.allclose(toy_losses(theta[1]), f[1])
    # below the x1 axis only the quadratic bowls act: f1's centre is at x1 = 7, f2's at -7
    assert toy_losses(torch.tensor([7.0, -8.0]))[0] < toy_losses(torch.tensor([-7.0, -8.0]))[0]
    assert len(STARTS) == 5
    with pytest.raises(ValueError, match="last dimension 2"):
        toy_losses(torch.zeros(3))


def test_overlay_places_digits_in_opposite_corners():
    left = torch.zeros(1, 28, 28)
    left[0, 0, 0] = 1.0
    right = torch.zeros(1, 28, 28)
    right[0, -1, -1] = 0.5
    img = overlay(left, right)
    assert img.shape == (1, 1, 36, 36)
    assert img[0, 0, 0, 0] == 1.0 and img[0, 0, 35, 35] == 0.5


def _write_idx(path, array, code):
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)


def test_idx_loader_reads_files_the_test_writes(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=12, dtype=np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images, 0x08)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels, 0x08)
    assert np.array_equal(read_idx(tmp_path / "train-images-idx3-ubyte.gz"), images)
    x, y = load_digits("idx", tmp_path)
    assert x.shape == (12, 28, 28) and torch.equal(y, torch.as_tensor(labels, dtype=torch.int64))
    assert torch.allclose(x, torch.as_tensor(images / 255.0, dtype=torch.float32))
    train, test = multimnist(20, 5, source="idx", idx_dir=tmp_path)
    assert train.x.shape == (20, 1, 36, 36) and len(test) == 5


def test_idx_loader_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    _write_idx(tmp_path / "short", np.zeros(10, np.uint8), 0x08)
    data = (tmp_path / "short").read_bytes()
    (tmp_path / "short").write_bytes(data[:-3])
    with pytest.raises(ValueError, match=r"header says shape \(10,\)"):
        read_idx(tmp_path / "short")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_digits("idx", tmp_path)
    with pytest.raises(ValueError, match="unknown digit source 'emnist'"):
        load_digits("emnist")


def test_multimnist_from_shipped_digits_is_cached_and_disjoint():
    train, test = multimnist(200, 50, seed=0)
    assert train.x.shape == (200, 1, 36, 36) and test.x.shape == (50, 1, 36, 36)
    assert set(train.targets) == {"left", "right"} and train.targets["left"].dtype == torch.int64
    assert 0.0 <= float(train.x.min()) and float(train.x.max()) <= 1.0
    again, _ = multimnist(200, 50, seed=0)
    assert torch.equal(train.x, again.x)
    assert len(set(train.targets["left"].tolist())) == 10


def test_sklearn_digits_upscale_to_mnist_size():
    x, y = load_digits("sklearn")
    assert x.shape[1:] == (28, 28) and len(x) == len(y) == 1797
    d = make_multimnist(x, y, 10, seed=0)
    assert d.x.shape == (10, 1, 36, 36)


def test_dataset_validation_names_the_problem():
    d = correlated_regression(10, 0.5)
    from mtlkit.data import MultiTaskDataset
    with pytest.raises(ValueError, match="task 't1': targets have 9 rows but x has 10"):
        MultiTaskDataset(d.x, {"t1": d.targets["t1"][:9], "t2": d.targets["t2"]}, d.tasks)
    bad = d.targets["t2"].clone()
    bad[3] = float("nan")
    with pytest.raises(ValueError, match="targets of task 't2' contain NaN"):
        MultiTaskDataset(d.x, {"t1": d.targets["t1"], "t2": bad}, d.tasks)
    with pytest.raises(ValueError, match="do not fit a dataset of 10"):
        d.split(8, 8)
    a, b = d.split(6, 4, seed=1)
    assert len(a) == 6 and len(b) == 4
    assert not set(map(tuple, a.x.tolist())) & set(map(tuple, b.x.tolist()))
