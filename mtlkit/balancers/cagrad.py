"""CAGrad: the best worst-case improvement within a ball around the mean gradient.

    max_d min_i g_i·d   s.t.  ||d − g_0|| ≤ c ||g_0||,      g_0 = (1/T) Σ_i g_i

Its dual, over the simplex: w* = argmin_{w ∈ Δ} g_wᵀ g_0 + c ||g_0|| ||g_w||,
g_w = Σ_i w_i g_i, gives d = g_0 + (c ||g_0|| / ||g_w*||) g_w*, here divided by
1 + c² (the official code's default rescaling). c = 0 is the mean gradient
(equal weighting / T); c → 1 approaches MGDA-like behaviour.

Here the primal itself is solved, in the weights: the optimal d lies in the span
of the g_i, d = Σ_i y_i g_i, so the problem is max t over (y, t) subject to
K y ≥ t 1 and (y − 1/T)ᵀ K (y − 1/T) ≤ c² (1/T)ᵀ K (1/T). On the set S of tasks
that end worst, its optimality conditions have a closed form (a quadratic in t),
so an active-set search over S, started from the worst task at g_0, solves it
exactly; where that search does not settle (0 in the hull of the gradients, when
the ball no longer limits t) SciPy's SLSQP solves the smooth problem in T + 1
variables and the search restarts from the tasks it leaves worst. Unlike the dual
(whose objective has a kink where g_w = 0), this stays well posed when 0 is in
the hull: for exactly opposite g_1 = −g_2 beside a third task the worst task still
reaches the optimum (0 here), where the dual's formula falls back to g_0.

Degenerate cases: g_0 = 0 (the gradients cancel on average) gives a ball of
radius 0, so d = 0. A zero task gradient is a task with g_i·d = 0 for every d:
the optimum of the worst task is at most 0. T = 1: d = g_1 (scaled by 1/(1+c²)
with ``rescale``). T > P: K is singular and y is not unique; d is.

Liu, Liu, Jin, Stone & Liu, "Conflict-Averse Gradient Descent for Multi-task
Learning", NeurIPS 2021, arXiv 2110.14048.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from .base import GradientBalancer


class CAGrad(GradientBalancer):
    """Conflict-averse gradient with ball radius ``c`` (relative to ||g_0||)."""

    name = "cagrad"
    permutation_equivariant = True

    def __init__(self, on: str = "params", c: float = 0.4, rescale: bool = True):
        super().__init__(on)
        if not 0.0 <= c < 1.0:
            raise ValueError(f"c must lie in [0, 1), got {c}")
        self.c, self.rescale = c, rescale

    def gram_weights(self, K: np.ndarray) -> np.ndarray:
        """y (T,) with d = Σ y_i g_i, from the Gram matrix K."""
        T = K.shape[0]
        mean = np.full(T, 1.0 / T)
        scale = float(np.trace(K)) / T
        if self.c == 0 or scale <= 0:
            return mean
        A = K / scale
        radius2 = self.c ** 2 * max(mean @ A @ mean, 0.0)
        if radius2 <= 0:
            return mean
        # an exact active-set search from the worst task at g0; SLSQP finds the set when that search cannot
        y = self._active_set(A, mean, radius2, A @ mean <= (A @ mean).min())
        if y is None:
            y = self._solve_primal(A, mean, radius2)
            Ay = A @ y
            exact = self._active_set(A, mean, radius2, Ay <= Ay.min() + 1e-6 * (abs(Ay.min()) + 1e-12))
            y = y if exact is None else exact
        return y / (1 + self.c ** 2) if self.rescale else y

    @staticmethod
    def _solve_primal(A: np.ndarray, mean: np.ndarray, radius2: float) -> np.ndarray:
        """argmax over y of min_i (A y)_i subject to (y − mean)ᵀ A (y − mean) ≤ radius2."""
        T = A.shape[0]
        x0 = np.append(mean, float((A @ mean).min()))
        constraints = (
            {"type": "ineq", "fun": lambda x: A @ x[:T] - x[T],
             "jac": lambda x: np.hstack([A, -np.ones((T, 1))])},
            {"type": "ineq", "fun": lambda x: radius2 - (x[:T] - mean) @ A @ (x[:T] - mean),
             "jac": lambda x: np.append(-2 * A @ (x[:T] - mean), 0.0)},
        )
        res = minimize(lambda x: -x[T], x0, jac=lambda x: np.append(np.zeros(T), -1.0), method="SLSQP",
                       constraints=constraints, options={"ftol": 1e-15, "maxiter": 500})
        y = res.x[:T] if np.isfinite(res.x).all() else mean
        step = max((y - mean) @ A @ (y - mean), 0.0)
        return mean + (y - mean) * np.sqrt(radius2 / step) if step > radius2 else y   # back onto the ball

    @staticmethod
    def _active_set(A: np.ndarray, mean: np.ndarray, radius2: float, in_S: np.ndarray) -> np.ndarray | None:
        """The exact optimum by an active-set search over the set S of worst tasks, or None if not found.

        At the optimum y = mean + v with v ≥ 0 supported on S (v is the dual's
        weights times r/||g_w||), (A y)_S = t 1 and vᵀAv = radius2, so v = t p − q with
        p = A_SS⁺ 1, q = A_SS⁺ (A mean)_S and t the larger root of a quadratic. A task
        with v_i < 0 leaves S and a task below t joins it, until both conditions hold
        (the optimality conditions: the answer is then exact). None when they do not
        within 2T changes, or when the ball is not what limits t (0 in the hull).
        """
        in_S = in_S.copy()
        for _ in range(2 * len(mean)):
            S = np.flatnonzero(in_S)
            ASS = A[np.ix_(S, S)]
            p = np.linalg.lstsq(ASS, np.ones(len(S)), rcond=None)[0]
            q = np.linalg.lstsq(ASS, (A @ mean)[S], rcond=None)[0]
            a, b, c = p @ ASS @ p, p @ ASS @ q, q @ ASS @ q - radius2
            if a <= 0 or b * b - a * c < 0:
                return None
            t = (b + np.sqrt(b * b - a * c)) / a
            v = t * p - q
            if v.min() < 0 and len(S) > 1:
                in_S[S[np.argmin(v)]] = False
                continue
            y = mean.copy()
            y[S] += np.clip(v, 0.0, None)
            Ay = A @ y
            tol = 1e-12 * (abs(t) + np.abs(Ay).max())
            if np.abs(Ay[S] - t).max() > 1e6 * tol:   # A_SS singular and (A y)_S = t 1 unsolvable (a zero gradient)
                return None
            j = int(np.argmin(Ay))
            if Ay[j] < t - tol:
                if in_S[j]:
                    return None
                in_S[j] = True
                continue
            return y
        return None
