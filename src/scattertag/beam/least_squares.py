"""Bounded soft-L1 least squares over a handful of parameters: one Levenberg-Marquardt.

Minimises cost(x) = C^2 sum_i (sqrt(1 + (f_i(x) / C)^2) - 1), the soft-L1 loss of scale C
(``f_scale``; scipy's ``least_squares`` cost 0.5 sum rho, so the two compare), over x in
[lower, upper]. With t = 1 + (f / C)^2 and the IRLS weights w = 1 / sqrt(t), the cost's
gradient is J^T W f and its Gauss-Newton Hessian with the loss's curvature (as scipy's)
J^T W^3 J; each step solves (J^T W^3 J + lam D) dx = -J^T W f, D = diag(J^T W^3 J) +
1 / x_scale^2 (Marquardt's scaling, floored so a parameter the residuals barely see is
still damped), the weights refreshed at every accepted point. A parameter at a bound that
the gradient pushes beyond it is held there (active set); a step is clipped into the
bounds. A step that lowers the cost is taken (lam / 3), else lam grows by 4 and the step
is solved again.

Stopping rule: after an accepted step that lowered the cost by at most ``ftol`` of it or
moved every parameter by at most ``xtol`` of its ``x_scale``; when no step lowers the cost
(lam over 1e12, a singular system); or after ``max_nfev`` evaluations of f. The Jacobian
is ``fun``'s own when it returns (f, J) (``jac=True``), else forward differences (step
sqrt(eps) max(1, |x_j|), backwards at the upper bound; P evaluations, not counted in
``max_nfev``; one call of ``many`` where the caller can evaluate the P shifted parameter
vectors together, the same floats with one P-th of the Python and numpy calls). For a
few parameters on a few hundred to a few thousand residuals this costs a fraction of
``scipy.optimize.least_squares``' own overhead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Damping factor's start, its change after an accepted and a rejected step, and the
#: largest before the search gives up.
LAM_START, LAM_DOWN, LAM_UP, LAM_MAX = 1e-3, 3.0, 4.0, 1e12
_EPS = math.sqrt(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Solution:
    """The fit: parameters x (P,), cost (the soft-L1 cost above), residuals f (N,) at x and
    their Jacobian (N, P) at x (None when forward differences were not asked for)."""

    x: np.ndarray
    cost: float
    f: np.ndarray
    jac: np.ndarray | None


def soft_l1(f: np.ndarray, f_scale: float) -> tuple[float, np.ndarray]:
    """(cost, w): the soft-L1 cost C^2 sum (sqrt(t) - 1) of residuals f (N,), t = 1 +
    (f / C)^2, and the IRLS weights w = 1 / sqrt(t) (N,)."""
    t = 1.0 + (f / f_scale) ** 2
    root = np.sqrt(t)
    return f_scale * f_scale * float(np.sum(root - 1.0)), 1.0 / root


#: Residuals of several parameter vectors at once: (k, P) -> (k, N), row i fun(X[i]).
Many = Callable[[np.ndarray], np.ndarray]


def forward_jacobian(
    fun: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    f: np.ndarray,
    upper: np.ndarray,
    many: Many | None = None,
) -> np.ndarray:
    """(N, P) forward differences of ``fun`` at x (f = fun(x)), each step backwards where a
    forward one would pass ``upper``; with ``many`` the P shifted vectors in one call."""
    steps = np.empty(x.size)
    shifted = np.empty((x.size, x.size))
    shifted[:] = x
    for j in range(x.size):
        h = _EPS * max(1.0, abs(x[j]))
        steps[j] = h if x[j] + h <= upper[j] else -h
        shifted[j, j] += steps[j]
    if many is None:
        rows = np.stack([fun(xh) for xh in shifted])
    else:
        rows = many(shifted)
    return np.ascontiguousarray(((rows - f) / steps[:, None]).T)


def solve(
    fun: Callable[[np.ndarray], np.ndarray | tuple[np.ndarray, np.ndarray]],
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    x_scale: np.ndarray,
    *,
    f_scale: float = 1.0,
    max_nfev: int = 40,
    ftol: float = 0.0,
    xtol: float = 0.0,
    jac: bool = False,
    want_jac: bool = False,
    many: Many | None = None,
) -> Solution:
    """The soft-L1 least-squares fit of the residuals ``fun`` (P,) -> (N,) (or (f, J) with
    ``jac``) from x0 in [lower, upper], as the module says; ``want_jac`` also returns the
    forward-difference Jacobian at the solution; ``many`` evaluates ``fun`` of several
    parameter vectors at once (:func:`forward_jacobian`)."""
    lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    x_scale = np.broadcast_to(np.asarray(x_scale, np.float64), lower.shape)

    def evaluate(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = fun(x)
        return out if isinstance(out, tuple) else (out, None)

    def residuals(x: np.ndarray) -> np.ndarray:
        return evaluate(x)[0]

    x = np.clip(np.asarray(x0, dtype=np.float64), lower, upper)
    f, j = evaluate(x)
    cost, w = soft_l1(f, f_scale)
    nfev, lam = 1, LAM_START
    floor = 1.0 / (x_scale * x_scale)
    while math.isfinite(cost) and nfev < max_nfev:
        if j is None:
            j = forward_jacobian(residuals, x, f, upper, many)
        grad = j.T @ (w * f)
        a = j * (w * np.sqrt(w))[:, None]  # J^T diag(w^3) J, with the loss's curvature
        hess = a.T @ a
        damp = np.diag(np.diag(hess) + floor)
        # parameters at a bound that the cost pushes beyond it stay there (active set)
        held = ((x <= lower) & (grad > 0)) | ((x >= upper) & (grad < 0))
        free = ~held
        if held.any():
            sub = np.ix_(free, free)
            hess, damp, grad = hess[sub], damp[sub], grad[free]
        done = True
        while nfev < max_nfev:
            try:
                part = np.linalg.solve(hess + lam * damp, -grad)
            except np.linalg.LinAlgError:
                break
            step = part
            if held.any():
                step = np.zeros(x.size)
                step[free] = part
            new = np.clip(x + step, lower, upper)
            if not np.all(np.isfinite(new)):
                break
            fn, jn = evaluate(new)
            nfev += 1
            cn, wn = soft_l1(fn, f_scale)
            if cn < cost:
                small = bool(np.all(np.abs(new - x) <= xtol * x_scale))
                done = cost - cn <= ftol * cost or small
                x, f, j, cost, w = new, fn, jn, cn, wn
                lam = max(lam / LAM_DOWN, 1e-9)
                break
            lam *= LAM_UP
            if lam > LAM_MAX:
                break
        if done:
            break
    if j is None and want_jac:
        j = forward_jacobian(residuals, x, f, upper, many)
    return Solution(x, cost, f, j)
