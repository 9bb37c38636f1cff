"""Instant feedback for the course assignments (notebooks/assignments).

Each ``check_*`` function runs a student's implementation on a few tiny inputs and
checks one property at a time. The first property that fails raises an
``AssertionError`` that says which property, on which input, what came back and
what was expected, e.g.::

    PCGrad: for G=[[1, 0], [-1, 1]] your update d=[-0.5, 1.5] has inner product
    -0.5 with task 0's gradient; a projected update must not conflict with any task.

When every property holds, the check prints one line and returns ``None``.

These are the checks a student sees and can run as often as they like. They use
their own inputs, with expected values worked out by hand; the graded hidden tests
live only in the instructor's source notebooks and use other inputs and further
properties. This module deliberately contains no reference implementation: the
expected numbers are literals and everything else is a property (orthogonality,
no conflict, optimality, shapes, gradients).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

__all__ = ["check_pcgrad_projection", "check_pcgrad", "check_uncertainty_objective",
           "check_optimal_log_vars", "check_fit_log_vars", "check_cross_stitch_init",
           "check_cross_stitch_forward", "check_tag_affinity", "check_best_grouping",
           "check_no_reference", "fmt"]

ATOL = 1e-5


def fmt(x: Any) -> str:
    """A compact, readable form of a tensor or number: [[1, 0], [-1, 1]], 0.5."""
    if isinstance(x, Tensor):
        x = x.detach().cpu().tolist()
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in x) + "]"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _t(rows: Any) -> Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def _fail(what: str, message: str) -> None:
    raise AssertionError(f"{what}: {message}")


def _call(what: str, fn: Callable, *args, **kwargs) -> Any:
    """Call the student's code; say plainly when it is still the stub or raises."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        _fail(what, "not implemented yet (the cell still raises NotImplementedError).")
    except Exception as e:  # the student's bug, reported with its input below
        shown = ", ".join(fmt(a) for a in args)
        _fail(what, f"calling it with ({shown}) raised {type(e).__name__}: {e}")


def _tensor(what: str, out: Any, shape: tuple[int, ...], where: str) -> Tensor:
    """Check that ``out`` is a finite float tensor of the given shape."""
    if not isinstance(out, Tensor):
        _fail(what, f"{where} returned {type(out).__name__}; expected a torch.Tensor of shape {shape}.")
    if tuple(out.shape) != shape:
        _fail(what, f"{where} returned shape {tuple(out.shape)}; expected {shape}.")
    if not torch.isfinite(out).all():
        _fail(what, f"{where} returned non-finite values {fmt(out)}.")
    return out


def _close(what: str, got: Tensor, expected: Tensor, where: str, why: str = "", atol: float = 1e-4) -> None:
    if not torch.allclose(got.detach().float(), expected.float(), atol=atol, rtol=1e-4):
        _fail(what, f"{where} gave {fmt(got)}; expected {fmt(expected)}.{(' ' + why) if why else ''}")


def _unchanged(what: str, before: Tensor, after: Tensor, name: str) -> None:
    if not torch.equal(before, after):
        _fail(what, f"your function changed its input {name} in place (from {fmt(before)} to {fmt(after)}); "
                    "work on a copy (.clone()).")


def _passed(what: str, n: int) -> None:
    checks = "the visible check" if n == 1 else f"all {n} visible checks"
    print(f"✓ {what}: {checks} passed. (The graded tests check more.)")


# ---------------------------------------------------------------- PCGrad


def check_pcgrad_projection(project: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Checks ``project(g_i, g_j)``: g_i with its component along g_j removed if they conflict."""
    what = "project_conflicting"
    cases = [  # g_i, g_j, expected, reason
        ([1.0, 2.0], [1.0, 0.0], [1.0, 2.0], "they do not conflict (g_i·g_j = 1 ≥ 0), so g_i stays as it is"),
        ([1.0, 1.0], [-1.0, 0.0], [0.0, 1.0], "g_i·g_j = -1 < 0: remove (g_i·g_j/||g_j||²) g_j from g_i"),
        ([3.0, 0.0], [0.0, 2.0], [3.0, 0.0], "orthogonal gradients do not conflict"),
        ([1.0, -1.0], [0.0, 0.0], [1.0, -1.0], "a zero g_j has no direction to project on; keep g_i (and no NaN)"),
    ]
    for gi, gj, expected, why in cases:
        g_i, g_j = _t(gi), _t(gj)
        keep_i, keep_j = g_i.clone(), g_j.clone()
        where = f"for g_i={fmt(g_i)}, g_j={fmt(g_j)} your result"
        out = _tensor(what, _call(what, project, g_i, g_j), (2,), where)
        _unchanged(what, keep_i, g_i, "g_i")
        _unchanged(what, keep_j, g_j, "g_j")
        if (keep_i @ keep_j) < 0 and abs(float(out @ keep_j)) > ATOL:
            _fail(what, f"{where} {fmt(out)} has inner product {float(out @ keep_j):.4g} with g_j; "
                        "after projecting a conflicting g_i it must be orthogonal to g_j (inner product 0).")
        _close(what, out, _t(expected), where, why)
    _passed(what, len(cases))


def _check_no_conflict_two_tasks(what: str, G: Tensor, d: Tensor) -> None:
    for i in range(G.shape[0]):
        dot = float(d @ G[i])
        if dot < -ATOL:
            _fail(what, f"for G={fmt(G)} your update d={fmt(d)} has inner product {dot:.4g} with task {i}'s "
                        "gradient; with two tasks a projected update must not conflict with either task.")


def check_pcgrad(pcgrad: Callable[..., Tensor]) -> None:
    """Checks ``pcgrad(G, order=None) -> d`` on tiny gradient matrices G (T, P)."""
    what = "PCGrad"
    cases = [
        ([[1.0, 0.0], [0.0, 1.0]], [1.0, 1.0], "no two gradients conflict, so d is the plain sum of the rows"),
        ([[2.0, -1.0]], [2.0, -1.0], "with one task there is nothing to project: d = g_0"),
        ([[1.0, 0.0], [-1.0, 1.0]], [0.5, 1.5],
         "g_0' = g_0 - (g_0·g_1/||g_1||²) g_1 = [0.5, 0.5] and g_1' = g_1 - (g_1·g_0/||g_0||²) g_0 = [0, 1]"),
        ([[1.0, 0.0], [-3.0, 1.0]], [0.1, 1.3],
         "g_0' = g_0 - (g_0·g_1/||g_1||²) g_1 = [0.1, 0.3] and g_1' = g_1 - (g_1·g_0/||g_0||²) g_0 = [0, 1]"),
    ]
    updates = []
    for rows, _, _ in cases:  # first the properties, then the exact values
        G = _t(rows)
        keep = G.clone()
        d = _tensor(what, _call(what, pcgrad, G), (G.shape[1],), f"for G={fmt(G)} your update")
        _unchanged(what, keep, G, "G")
        if G.shape[0] == 2:
            _check_no_conflict_two_tasks(what, G, d)
        updates.append(d)
    for (rows, expected, why), d in zip(cases, updates):
        _close(what, d, _t(expected), f"for G={fmt(_t(rows))} your update", why)
    n = len(cases)
    G = _t([[1.0, 0.0], [-1.0, 1.0], [0.0, -1.0]])
    for order, expected in [([0, 1, 2], [0.0, -0.5]), ([2, 1, 0], [0.5, 0.0])]:
        where = f"for G={fmt(G)} and order={order} your update"
        d = _tensor(what, _call(what, pcgrad, G.clone(), order=order), (2,), where)
        _close(what, d, _t(expected), where,
               "Visit the other tasks in the given order and always project on the ORIGINAL g_j, "
               "not on a g_j you have already projected.")
        n += 1
    _passed(what, n)


# ---------------------------------------------------------------- uncertainty weighting


def check_uncertainty_objective(objective: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Checks ``objective(losses, log_vars)`` = Σ_i ½ e^{-s_i} L_i + ½ s_i (a scalar tensor)."""
    what = "uncertainty objective"
    cases = [  # losses, log_vars, expected, reason
        ([1.0, 3.0], [0.0, 0.0], 2.0, "with s = 0 every weight is ½, so the objective is ½ Σ L_i"),
        ([2.0], [math.log(2.0)], 0.5 + 0.5 * math.log(2.0), "½ e^{-s} L = ½ when e^s = L, plus the ½ s term"),
        ([1.0, 1.0], [1.0, -1.0], 0.5 * (math.exp(-1.0) + math.exp(1.0)),
         "½ e^{-1} + ½ e^{1}; the ½ s terms cancel (½·1 + ½·(-1) = 0)"),
    ]
    for losses, log_vars, expected, why in cases:
        L, s = _t(losses), _t(log_vars)
        where = f"for losses={fmt(L)}, log_vars={fmt(s)} your objective"
        out = _tensor(what, _call(what, objective, L, s), (), where)
        _close(what, out, torch.tensor(expected), where, why)
    L, s = _t([4.0, 0.5]), torch.zeros(2, requires_grad=True)
    out = _call(what, objective, L, s)
    if not isinstance(out, Tensor) or not out.requires_grad:
        _fail(what, "the objective must stay differentiable in log_vars (build it from torch operations on "
                    "log_vars, without .item() or .detach()), so the optimizer can learn s.")
    out.backward()
    expected_grad = 0.5 * (1 - L * torch.exp(-s.detach()))
    _close(what, s.grad, expected_grad, f"for losses={fmt(L)} at log_vars=[0, 0] the gradient d/ds of your objective",
           "d/ds_i = ½ (1 - L_i e^{-s_i}): a task with a large loss pushes its s_i up (less weight).")
    _passed(what, len(cases) + 1)


def check_optimal_log_vars(optimal: Callable[[Tensor], Tensor]) -> None:
    """Checks ``optimal(losses)``: the s minimising the objective for fixed losses, s_i = log L_i."""
    what = "optimal log-variances"
    for losses in ([1.0, math.e, 4.0], [0.25]):
        L = _t(losses)
        where = f"for losses={fmt(L)} your optimum"
        s = _tensor(what, _call(what, optimal, L), tuple(L.shape), where)
        grad = 0.5 * (1 - L * torch.exp(-s))
        if grad.abs().max() > 1e-4:
            _fail(what, f"{where} s={fmt(s)} is not stationary: the objective's gradient there is {fmt(grad)}. "
                        "Set d/ds_i [½ e^{-s_i} L_i + ½ s_i] = 0 and solve for s_i.")
    _passed(what, 2)


def check_fit_log_vars(fit: Callable[..., Tensor]) -> None:
    """Checks ``fit(losses)``: gradient descent on the objective ends near s_i = log L_i."""
    what = "fit_log_vars"
    L = _t([0.5, 2.0])
    where = f"for losses={fmt(L)} your fitted log_vars"
    s = _tensor(what, _call(what, fit, L), (2,), where)
    _close(what, s, torch.log(L), where, "Gradient descent on your objective should reach s_i = log L_i "
           "(within 1e-3); take more steps or a larger learning rate.", atol=1e-3)
    _passed(what, 1)


# ---------------------------------------------------------------- cross-stitch


def _alpha(what: str, unit: nn.Module, T: int) -> nn.Parameter:
    alpha = getattr(unit, "alpha", None)
    if not isinstance(alpha, nn.Parameter):
        _fail(what, f"CrossStitch({T}).alpha is {type(alpha).__name__}; it must be an nn.Parameter "
                    "(so the optimizer learns it).")
    if tuple(alpha.shape) != (T, T):
        _fail(what, f"CrossStitch({T}).alpha has shape {tuple(alpha.shape)}; expected ({T}, {T}).")
    if not any(p is alpha for p in unit.parameters()):
        _fail(what, f"CrossStitch({T}).alpha is not among the module's parameters(); assign it as self.alpha.")
    return alpha


def check_cross_stitch_init(CrossStitch: type) -> None:
    """Checks ``CrossStitch(num_tasks, self_weight=0.9)``: alpha (T, T), diagonal self_weight, rows sum to 1."""
    what = "CrossStitch init"
    cases = [(2, 0.9, [[0.9, 0.1], [0.1, 0.9]]),
             (3, 0.8, [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]),
             (1, 0.9, [[1.0]])]
    for T, sw, expected in cases:
        unit = _call(what, CrossStitch, T, self_weight=sw)
        alpha = _alpha(what, unit, T)
        why = ("a task alone keeps all of its own features" if T == 1 else
               "self_weight on the diagonal, the rest (1 - self_weight) shared equally by the other tasks")
        _close(what, alpha, _t(expected), f"CrossStitch({T}, self_weight={sw}).alpha", why)
    _passed(what, len(cases))


def check_cross_stitch_forward(CrossStitch: type) -> None:
    """Checks ``forward(features)``: x̃_i = Σ_j alpha[i, j] x_j for a list of T same-shaped tensors."""
    what = "CrossStitch forward"
    unit = _call(what, CrossStitch, 2)
    alpha = _alpha(what, unit, 2)
    with torch.no_grad():
        alpha.copy_(_t([[0.5, 0.5], [0.25, 0.75]]))
    x0, x1 = _t([[1.0, 2.0]]), _t([[3.0, -2.0]])
    where = f"with alpha=[[0.5, 0.5], [0.25, 0.75]], x_0={fmt(x0)}, x_1={fmt(x1)} your outputs"
    out = _call(what, unit, [x0, x1])
    if not isinstance(out, (list, tuple)) or len(out) != 2:
        _fail(what, f"{where}: expected a list of 2 tensors, got {type(out).__name__}.")
    _close(what, torch.stack([_tensor(what, o, (1, 2), where) for o in out]), _t([[[2.0, 0.0]], [[2.5, -1.0]]]),
           where, "Each output mixes ALL task features: x̃_i = Σ_j alpha[i, j] x_j.")
    x = [torch.randn(2, 3, 4, 4) for _ in range(3)]
    unit = _call(what, CrossStitch, 3)
    out = _call(what, unit, x)
    for i, o in enumerate(out):
        _tensor(what, o, (2, 3, 4, 4), f"for three (2, 3, 4, 4) feature maps, output {i}")
    sum(o.sum() for o in out).backward()
    if unit.alpha.grad is None or not torch.isfinite(unit.alpha.grad).all() or unit.alpha.grad.abs().sum() == 0:
        _fail(what, "no gradient reached alpha: compute the outputs from self.alpha with torch operations "
                    "(no .detach(), .item() or numpy) so the mixing is learned.")
    _passed(what, 3)


# ---------------------------------------------------------------- TAG


def _quadratic_tasks() -> tuple[Callable[[Tensor], Tensor], Tensor]:
    """L_j(θ) = a_j ||θ - c_j||² with a = [1, 2, 0.5] (asymmetric affinities), θ = 0."""
    centres = _t([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    scales = _t([1.0, 2.0, 0.5])

    def losses(theta: Tensor) -> Tensor:
        return scales * ((theta - centres) ** 2).sum(dim=1)
    return losses, torch.zeros(2)


def check_tag_affinity(affinity: Callable[..., Tensor]) -> None:
    """Checks ``affinity(loss_fn, theta, lr) -> Z`` with Z[i, j] = 1 - L_j(θ - lr ∇L_i(θ)) / L_j(θ)."""
    what = "TAG affinity"
    loss_fn, theta = _quadratic_tasks()
    keep = theta.clone()
    where = ("for L_j(θ) = a_j ||θ - c_j||², a = [1, 2, 0.5], c = [[1, 0], [-1, 0], [0, 1]], θ = [0, 0], "
             "lr = 0.25 your Z")
    Z = _tensor(what, _call(what, affinity, loss_fn, theta, lr=0.25), (3, 3), where)
    _unchanged(what, keep, theta, "theta")
    expected = _t([[0.75, -1.25, -0.25], [-3.0, 1.0, -1.0], [-0.0625, -0.0625, 0.4375]])
    if torch.allclose(Z, expected.T, atol=1e-4) and not torch.allclose(Z, expected, atol=1e-4):
        _fail(what, f"{where} is the transpose of the expected matrix: row i is the task that takes the step, "
                    "column j the task whose loss is measured after it (Z[i, j] = affinity of i onto j).")
    _close(what, Z, expected, where, "Z[i, j] = 1 - L_j(after one SGD step on task i alone) / L_j(before). "
           "Check the diagonal: a step on task i lowers L_i, so Z[i, i] > 0.")
    _passed(what, 1)


def check_best_grouping(best_grouping: Callable[[Tensor, int], Any]) -> None:
    """Checks ``best_grouping(Z, num_groups)``: the partition with the largest total affinity."""
    what = "best_grouping"
    Z = _t([[1.0, 0.6, -0.2, 0.0],
            [0.4, 1.0, 0.1, -0.3],
            [-0.1, 0.0, 1.0, 0.5],
            [0.2, -0.4, 0.7, 1.0]])
    for k, expected, why in [
        (2, [(0, 1), (2, 3)], "{0, 1} score 0.4 + 0.6 = 1.0 and {2, 3} score 0.7 + 0.5 = 1.2"),
        (4, [(0,), (1,), (2,), (3,)], "four groups of four tasks can only be singletons"),
        (1, [(0, 1, 2, 3)], "one group holds every task"),
    ]:
        where = f"for Z={fmt(Z)} and num_groups={k} your grouping"
        got = _call(what, best_grouping, Z.clone(), k)
        try:
            got = sorted(tuple(sorted(int(t) for t in g)) for g in got)
        except TypeError:
            _fail(what, f"{where} is {got!r}; expected a list of groups, each a tuple of task indices.")
        if got != expected:
            _fail(what, f"{where} is {got}; expected {expected} ({why}).")
    _passed(what, 3)


# ---------------------------------------------------------------- integrity


def _names(code) -> set[str]:
    out = set(code.co_names) | set(code.co_varnames) | set(code.co_freevars)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            out |= _names(const)
    return out


def check_no_reference(obj: Callable | type, *forbidden: str) -> None:
    """Fail when a student's function or class names one of mtlkit's reference implementations."""
    functions: Sequence = [obj]
    if isinstance(obj, type):
        functions = [v for v in vars(obj).values() if callable(v)]
    used = set().union(*(_names(f.__code__) for f in functions if hasattr(f, "__code__")))
    hit = sorted(used & set(forbidden))
    if hit:
        raise AssertionError(f"{getattr(obj, '__name__', obj)} uses {', '.join(hit)} from mtlkit: "
                             "write the method yourself instead of calling the reference implementation.")
