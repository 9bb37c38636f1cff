"""Exact solvers on the T×T Gram matrix K = G Gᵀ, shared by the gradient methods.

Every gradient method that depends on G only through inner products works on K,
formed once in float64 (:func:`gram`): T is small, P may be huge, and float64
keeps gradients of norm 1e-30 or 1e20 (which under- or overflow a float32 K)
exact. The solvers below are scale-free: they rescale K, or use the cosine matrix
of the unit gradients (:func:`unit_gram`), so a task whose gradient is 10⁴ times
smaller than another's is solved as accurately as the others.

The quadratic programmes are solved in finitely many steps by SciPy's active-set
non-negative least squares (Lawson & Hanson, "Solving Least Squares Problems",
1974) on a square factor of K (no solver ever touches a P-long vector), then
re-solved on the active set from K itself. Accuracy: about eps·||G|| for the
direction d where the solution is unique and well separated; where 0 is (nearly)
in the hull of the gradients, a factor of K resolves d only to about √eps·||G||
(1.5e-8·||G|| in float64), the limit of any method that works from K.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import nnls
from torch import Tensor


def gram(G: Tensor) -> np.ndarray:
    """K = G Gᵀ (T, T) as float64 NumPy, computed in float64 on G's device.

    On the CPU, G is converted to float64 a block of columns at a time (about
    512 KiB each, so the copy stays in cache): 2-3x faster than converting all of
    G at once for T = 8 and P = 380k, with no T x P float64 copy in memory.
    """
    G = G.detach()
    if G.device.type != "cpu" or G.dtype == torch.float64:
        G64 = G.double()
        return (G64 @ G64.T).cpu().numpy()
    T, P = G.shape
    K = torch.zeros(T, T, dtype=torch.float64)
    block = max(1024, 2 ** 16 // max(T, 1))
    for start in range(0, P, block):
        part = G[:, start:start + block].double()
        K.addmm_(part, part.T)
    return K.numpy()


def unit_gram(K: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cosine matrix of the non-zero gradients.

    Returns ``(C, norms, nonzero)``: norms (T,) = ||g_i||, the boolean mask of the
    rows with ||g_i|| > 0, and C (k, k) = u_i·u_j over those k rows, u_i = g_i / ||g_i||.
    """
    norms = np.sqrt(np.clip(np.diag(K), 0.0, None))
    nonzero = norms > 0
    n = norms[nonzero]
    C = K[np.ix_(nonzero, nonzero)] / np.outer(n, n)
    return C, norms, nonzero


def square_factor(K: np.ndarray) -> np.ndarray:
    """Aᵀ (T, T) with ||Aᵀ v||² = vᵀ K v (from K's eigendecomposition; K = A Aᵀ)."""
    lam, V = np.linalg.eigh(K)
    return (V * np.sqrt(np.clip(lam, 0.0, None))).T


def min_norm_point(K: np.ndarray) -> np.ndarray:
    """α = argmin_{α ∈ Δ} αᵀ K α: weights of the minimum-norm point of the convex hull of G's rows.

    Δ = {α ≥ 0, Σ α = 1}. Solved through the least-distance programme it is dual
    to (Lawson & Hanson ch. 23): u = argmin_{u ≥ 0} ||Aᵀu||² + (1ᵀu − 1)² is a
    non-negative least-squares problem, and α = u / 1ᵀu (1ᵀu > 0 always; with d*
    the min-norm point, u = α / (1 + ||d*||²)). Works for any T and rank (T > P,
    duplicated or zero rows); d* = 0 when 0 is in the hull.
    """
    T = K.shape[0]
    scale = float(np.max(np.diag(K))) if T else 0.0
    if T == 1 or scale <= 0:
        return np.full(T, 1.0 / T)
    K = K / scale
    E = np.vstack([square_factor(K), np.ones((1, T))])
    f = np.zeros(T + 1)
    f[-1] = 1.0
    u, _ = nnls(E, f, maxiter=50 * T)
    alpha = u / u.sum()
    polished = _affine_min(K, alpha > 0)
    keep = polished.min() >= 0 and polished @ K @ polished <= alpha @ K @ alpha
    return polished if keep else alpha


def _affine_min(K: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Weights (zero off ``support``) of the min-norm point of the support's affine hull.

    Solves [[K_SS, 1], [1ᵀ, 0]] [a; λ] = [0; 1] (least squares when the support is
    affinely dependent): on its own support the simplex optimum is this point.
    """
    S = np.flatnonzero(support)
    k = len(S)
    M = np.zeros((k + 1, k + 1))
    M[:k, :k] = K[np.ix_(S, S)]
    M[:k, k] = M[k, :k] = 1.0
    rhs = np.zeros(k + 1)
    rhs[k] = 1.0
    a = np.linalg.lstsq(M, rhs, rcond=None)[0][:k]
    y = np.zeros(len(support))
    y[S] = a / a.sum()
    return y


def cone_projection_weights(C: np.ndarray) -> np.ndarray:
    """V (k, k): row i holds v_i with Π(u_i) = Σ_j V_ij u_j, the projection of u_i onto the dual cone.

    The dual cone of the rows u_j is {x : u_j·x ≥ 0 for all j}; C is their Gram
    matrix. Π(u_i) = Σ_j (e_i + μ_i)_j u_j with μ_i = argmin_{μ ≥ 0} ||Aᵀ(e_i + μ)||²,
    the dual of the projection: a non-negative least-squares problem, then
    re-solved on its active set S from C itself: (C v_i)_S = 0, i.e.
    C_SS μ_S = −C_Si (kept when μ_S ≥ 0 and ||Π(u_i)|| does not grow).
    """
    k = C.shape[0]
    At = square_factor(C)
    V = np.eye(k)
    for i in range(k):
        mu, _ = nnls(At, -At[:, i], maxiter=50 * k)
        v = V[i] + mu
        S = np.flatnonzero(mu > 0)
        if len(S):
            exact = np.linalg.lstsq(C[np.ix_(S, S)], -C[S, i], rcond=None)[0]
            w = V[i].copy()
            w[S] = exact
            if exact.min() >= 0 and w @ C @ w <= v @ C @ v:
                v = w
        V[i] = v
    return V


def as_weights(alpha: np.ndarray, like: Tensor) -> Tensor:
    """NumPy weights -> a tensor with ``like``'s dtype and device."""
    return torch.as_tensor(alpha, dtype=like.dtype, device=like.device)
