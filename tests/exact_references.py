"""Exact solutions of each gradient method's own problem, written from the papers' definitions.

Independent of mtlkit's solvers on purpose: they work on G itself in float64 NumPy
and enumerate active sets (support enumeration) instead of running an iterative
or NNLS solver, so a bug in mtlkit's solvers cannot hide in them. They are slow
(2^T subsets) and meant for small T or small P only.

Conventions shared with mtlkit (each method's docstring states them): a zero
gradient (||g_i|| = 0) imposes no constraint and gets weight 0 in IMTL-G, Nash-MTL
and UPGrad's cone; MGDA's hull contains it, so d = 0.
"""
from __future__ import annotations

import itertools

import numpy as np
import scipy.optimize


def _subsets(n: int, max_size: int):
    for size in range(1, min(n, max_size) + 1):
        yield from itertools.combinations(range(n), size)


def min_norm_point(G: np.ndarray) -> np.ndarray:
    """d* = argmin ||d|| over the convex hull of G's rows (support enumeration).

    For each support S, the min-norm point of the affine hull of {g_i : i ∈ S}
    solves [[G_S G_Sᵀ, 1], [1ᵀ, 0]] [a; λ] = [0; 1]; when a ≥ 0 it is a point of
    the convex hull. The hull's min-norm point is the best such candidate (its
    own support, made affinely independent, is one of the subsets: Carathéodory).
    """
    T = G.shape[0]
    rank = np.linalg.matrix_rank(G) if G.any() else 0
    best, best_val = None, np.inf
    for S in _subsets(T, rank + 1):
        GS = G[list(S)]
        k = len(S)
        M = np.zeros((k + 1, k + 1))
        M[:k, :k] = GS @ GS.T
        M[:k, k] = M[k, :k] = 1.0
        rhs = np.zeros(k + 1)
        rhs[k] = 1.0
        a = np.linalg.lstsq(M, rhs, rcond=None)[0][:k]
        if a.min() < -1e-9 or abs(a.sum() - 1) > 1e-9:
            continue
        d = np.clip(a, 0, None) @ GS / np.clip(a, 0, None).sum()
        val = d @ d
        if val < best_val:
            best, best_val = d, val
    return best


def _project_on_face(x: np.ndarray, rows: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """The point of {y : rows·y = levels} closest to x."""
    lam = np.linalg.lstsq(rows @ rows.T, levels - rows @ x, rcond=None)[0]
    return x + rows.T @ lam


def project_on_polyhedron(x: np.ndarray, G: np.ndarray, level: float = 0.0, tol: float = 1e-10) -> np.ndarray:
    """argmin ||y − x|| subject to u_j·y ≥ level·(||g_j||-free) for every non-zero row (active-set enumeration).

    The constraint of row j is g_j·y ≥ level ||g_j|| with rows scaled to unit length
    (the cone {G y ≥ 0} does not depend on the rows' lengths). The projection lies
    on one face {u_j·y = level, j ∈ A}; it is the closest feasible face projection.
    """
    norms = np.linalg.norm(G, axis=1)
    U = G[norms > 0] / norms[norms > 0, None]
    feasible = lambda y: (U @ y >= level - tol * (1 + np.linalg.norm(y))).all()  # noqa: E731
    best = x if feasible(x) else None
    rank = np.linalg.matrix_rank(U) if len(U) else 0
    for A in _subsets(len(U), rank):
        rows = U[list(A)]
        y = _project_on_face(x, rows, np.full(len(A), level))
        if feasible(y) and (best is None or np.linalg.norm(y - x) < np.linalg.norm(best - x)):
            best = y
    return best


def upgrad(G: np.ndarray) -> np.ndarray:
    """d = (1/T) Σ_i Π_C(g_i), C = {x : G x ≥ 0} (Quinton & Rey 2024)."""
    return np.mean([project_on_polyhedron(g, G) for g in G], axis=0)


def cagrad_optimum(G: np.ndarray, c: float, iters: int = 60) -> float:
    """t* = max_{||d − g0|| ≤ c||g0||} min_i g_i·d (Liu et al. 2021), by bisection on t.

    t is reachable iff the distance from g0 to {d : g_i·d ≥ t ∀i} is at most the
    radius; that distance is a projection onto a polyhedron, found by active-set
    enumeration on the raw rows.
    """
    g0 = G.mean(axis=0)
    r = c * np.linalg.norm(g0)
    lo = float((G @ g0).min())
    hi = float((G @ g0 + r * np.linalg.norm(G, axis=1)).min())
    rank = np.linalg.matrix_rank(G) if G.any() else 0

    def distance(t: float) -> float:
        feasible = lambda y: (G @ y >= t - 1e-12 * (1 + abs(t))).all()  # noqa: E731
        best = 0.0 if feasible(g0) else np.inf
        for A in _subsets(G.shape[0], rank):
            y = _project_on_face(g0, G[list(A)], np.full(len(A), t))
            if feasible(y):
                best = min(best, float(np.linalg.norm(y - g0)))
        return best

    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if distance(mid) <= r else (lo, mid)
    return lo


def nash_weights(G: np.ndarray) -> np.ndarray | None:
    """α > 0 with α_i (K α)_i = 1 over the non-zero rows (0 on zero rows), by a root-finder.

    In the unit gradients' cosine matrix C and β_i = α_i ||g_i||, the condition is
    β_i (C β)_i = 1; in logs (β = e^s, so β stays positive) it is the stationary
    point of ψ(s) = ½ e^sᵀ C e^s − Σ s, its only one. BFGS on ψ gives the start,
    MINPACK's hybrid root-finder solves the condition from there. None when the
    condition is not met to 1e-9 (no bargaining solution: 0 is in the convex hull
    of the gradients, where ψ is unbounded below).
    """
    norms = np.linalg.norm(G, axis=1)
    nz = norms > 0
    U = G[nz] / norms[nz, None]
    C = U @ U.T
    k = len(U)
    if k == 0:
        return np.zeros(G.shape[0])

    def F(s: np.ndarray) -> np.ndarray:
        return np.exp(s) * (C @ np.exp(s)) - 1

    def psi(s: np.ndarray) -> tuple[float, np.ndarray]:
        b = np.exp(s)
        return 0.5 * b @ C @ b - s.sum(), F(s)

    with np.errstate(over="ignore", invalid="ignore"):
        s0 = scipy.optimize.minimize(psi, np.zeros(k), jac=True, method="BFGS", options={"gtol": 1e-12}).x
        x = scipy.optimize.root(F, s0, method="hybr", options={"xtol": 1e-15}).x
        beta = np.exp(x)
        residual = np.abs(beta * (C @ beta) - 1).max()
    if not residual < 1e-9:
        return None
    alpha = np.zeros(G.shape[0])
    alpha[nz] = beta / norms[nz]
    return alpha


def imtl_g(G: np.ndarray) -> np.ndarray:
    """d of IMTL-G by the paper's closed form over the non-zero rows (Liu et al. 2021, eq. 13).

    D has rows g_1 − g_i, U rows u_1 − u_i (i = 2..k); α_{2..k} = g_1 Uᵀ (D Uᵀ)^{-1}
    (least squares when D Uᵀ is singular), α_1 = 1 − Σ α_{2..k}, d = Σ α_i g_i.
    """
    norms = np.linalg.norm(G, axis=1)
    Gn = G[norms > 0]
    if len(Gn) == 0:
        return np.zeros(G.shape[1])
    if len(Gn) == 1:
        return Gn[0].copy()
    Un = Gn / np.linalg.norm(Gn, axis=1, keepdims=True)
    D = Gn[0] - Gn[1:]
    Ud = Un[0] - Un[1:]
    rest = np.linalg.lstsq((D @ Ud.T).T, Ud @ Gn[0], rcond=None)[0]
    alpha = np.concatenate([[1 - rest.sum()], rest])
    return alpha @ Gn


def aligned_mtl(G: np.ndarray, eps: float) -> np.ndarray:
    """d = Σ_i rows of σ_min U_r V_rᵀ (Senushkin et al. 2023), from the SVD of G.

    Singular values with σ² ≤ T·eps·σ_max² count as zero (the paper code's rank rule).
    """
    T = G.shape[0]
    U, s, Vt = np.linalg.svd(G, full_matrices=False)
    if not s.size or s[0] == 0:
        return np.zeros(G.shape[1])
    keep = s ** 2 > T * eps * s[0] ** 2
    Ur, Vr = U[:, keep], Vt[keep]
    return s[keep][-1] * (Ur @ Vr).sum(axis=0)
