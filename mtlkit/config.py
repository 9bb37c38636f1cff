"""Run-time settings every notebook shares: device choice, seeding and quick mode.

Quick mode (``MTLKIT_QUICK=1``, set by the test suite) shrinks step counts so the
whole workbook runs in minutes on a laptop CPU. It never skips logic: every cell
still runs, on fewer steps.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

QUICK_ENV = "MTLKIT_QUICK"
DEVICE_ENV = "MTLKIT_DEVICE"


def is_quick() -> bool:
    """True when the ``MTLKIT_QUICK`` environment variable is set to 1/true/yes."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in {"1", "true", "yes"}


def steps(full: int, quick: int) -> int:
    """Step count for this run: ``quick`` in quick mode, ``full`` otherwise."""
    if full < 1 or quick < 1:
        raise ValueError(f"step counts must be positive, got full={full}, quick={quick}")
    return quick if is_quick() else full


def default_device() -> torch.device:
    """CUDA when present, CPU otherwise; ``MTLKIT_DEVICE`` overrides (e.g. ``cpu``)."""
    wanted = os.environ.get(DEVICE_ENV)
    if wanted:
        device = torch.device(wanted)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"{DEVICE_ENV}={wanted} but CUDA is not available on this machine")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a CPU generator for batching.

    Seeded runs reproduce exactly on the same device. On CUDA we also ask cuDNN
    for deterministic kernels.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)
