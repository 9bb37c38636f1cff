"""Small solvers on the probability simplex Δ = {α ≥ 0, Σ α = 1}, shared by gradient methods.

They work on the T×T Gram matrix K = G Gᵀ in float64 NumPy: T is small, P may be huge.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def gram(G: Tensor) -> np.ndarray:
    """K = G Gᵀ (T, T) as float64 NumPy, computed in G's precision on G's device."""
    return (G @ G.T).detach().double().cpu().numpy()


def min_norm_two(k11: float, k12: float, k22: float) -> float:
    """γ ∈ [0, 1] minimising ||γ v1 + (1-γ) v2||² given v1·v1, v1·v2, v2·v2 (closed form)."""
    den = k11 + k22 - 2 * k12
    if den <= 1e-300:
        return 0.5
    return float(np.clip((k22 - k12) / den, 0.0, 1.0))


def min_norm_simplex(K: np.ndarray, max_iter: int = 1000, tol: float = 1e-12) -> np.ndarray:
    """α = argmin_{α ∈ Δ} αᵀ K α, the min-norm point of the convex hull of G's rows.

    T = 2: closed form. T > 2: Frank-Wolfe with exact line search (Sener & Koltun
    2018, Algorithm 2), started from the best pair's solution.
    """
    T = K.shape[0]
    if T == 1:
        return np.ones(1)
    scale = max(float(np.trace(K)) / T, 1e-300)
    K = K / scale
    if T == 2:
        g = min_norm_two(K[0, 0], K[0, 1], K[1, 1])
        return np.array([g, 1 - g])
    alpha = _best_pair(K)
    for _ in range(max_iter):
        Ka = K @ alpha
        t = int(np.argmin(Ka))
        v1v1, v1v2, v2v2 = float(alpha @ Ka), float(Ka[t]), float(K[t, t])
        # move from the current point (v1) towards vertex t (v2): α ← γ α + (1-γ) e_t
        gamma = min_norm_two(v1v1, v1v2, v2v2)
        new = gamma * alpha
        new[t] += 1 - gamma
        if np.abs(new - alpha).sum() < tol:
            alpha = new
            break
        alpha = new
    return alpha


def _best_pair(K: np.ndarray) -> np.ndarray:
    T = K.shape[0]
    best, best_val = None, np.inf
    for i in range(T):
        for j in range(i + 1, T):
            g = min_norm_two(K[i, i], K[i, j], K[j, j])
            val = g * g * K[i, i] + 2 * g * (1 - g) * K[i, j] + (1 - g) ** 2 * K[j, j]
            if val < best_val:
                best_val, best = val, (i, j, g)
    i, j, g = best
    alpha = np.zeros(T)
    alpha[i], alpha[j] = g, 1 - g
    return alpha


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of v onto Δ (sort-based, Duchi et al. 2008)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1
    k = np.arange(1, len(v) + 1)
    rho = np.nonzero(u - css / k > 0)[0][-1]
    return np.maximum(v - css[rho] / (rho + 1), 0.0)


def as_weights(alpha: np.ndarray, like: Tensor) -> Tensor:
    """NumPy weights -> a tensor with ``like``'s dtype and device."""
    return torch.as_tensor(alpha, dtype=like.dtype, device=like.device)
