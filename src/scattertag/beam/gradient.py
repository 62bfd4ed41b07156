"""Gradient lines: the gradient of an isotropic pattern points along the radius.

The lines through the pixels along their gradients meet at the centre
(:func:`meeting_point`, iteratively reweighted 2 x 2 solves); :func:`coherence` scores how
radial the gradients are about a point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from scattertag.beam.pyramid import Level


@dataclass(frozen=True)
class Field:
    """Gradient samples of a level: positions (x, y), unit gradient (nx, ny), weight |grad g|^2,
    each (N,) float32 (the passes over them cost half of float64's; sums are taken in
    float64)."""

    x: np.ndarray
    y: np.ndarray
    nx: np.ndarray
    ny: np.ndarray
    w: np.ndarray

    @cached_property
    def lines(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(tx, ty, t . p, terms): each line's unit normal t = (-ny, nx), its offset and the
        (5, N) products (tx tx, tx ty, ty ty, tx t.p, ty t.p) that :func:`meeting_point`
        weights, computed once a field (the coarse field's lines meet twice)."""
        tx, ty = -self.ny, self.nx
        tp = tx * self.x + ty * self.y
        terms = np.stack([tx * tx, tx * ty, ty * ty, tx * tp, ty * tp]).astype(np.float64)
        return tx, ty, tp, terms


def gradient_field(level: Level, keep: int = 20000) -> Field:
    """Gradient samples of the smoothed level on interior pixels, the ``keep`` strongest;
    taken once a level (the candidates, the glance and the fallbacks share them)."""
    return level.kept(("field", keep), lambda: _field(level, keep))


def _field(level: Level, keep: int) -> Field:
    """:func:`gradient_field`, computed."""
    gy, gx = level.grad
    k = np.flatnonzero(level.interior(max(1, math.ceil(2 * level.sigma))))
    gx, gy = gx.ravel().take(k), gy.ravel().take(k)
    w = gx * gx + gy * gy
    if w.size > keep:
        top = np.argpartition(w, w.size - keep)[-keep:]
        k, gx, gy, w = k[top], gx[top], gy[top], w[top]
    iy, ix = np.divmod(k, level.grad[1].shape[1])  # nonzero2d's, of the kept pixels only
    norm = np.sqrt(np.maximum(w, 1e-30))
    gx, gy = gx / norm, gy / norm
    return Field(*(v.astype(np.float32) for v in (ix, iy, gx, gy, w)))


def coherence(f: Field, cx: float, cy: float, r_min: float = 2.0) -> float:
    """Radiality of the gradients about (cx, cy): sum w (n . u)^2 / sum w mapped to [-1, 1].

    u is the unit radius vector; 1 for an isotropic pattern, 0 for random directions.
    """
    dx, dy = f.x - np.float32(cx), f.y - np.float32(cy)
    r = dx * dx  # in place: r = sqrt(dx^2 + dy^2), cos = (n . d) / r, w cos^2
    r += dy * dy
    np.sqrt(r, out=r)
    use = r > r_min
    if use.all():  # the usual case: no gathers (the same sums)
        cos, w = f.nx * dx, f.w
        cos += f.ny * dy
        cos /= r
    elif not use.any():
        return 0.0
    else:
        cos, w = (f.nx[use] * dx[use] + f.ny[use] * dy[use]) / r[use], f.w[use]
    wcc = w * cos
    wcc *= cos
    total = max(float(np.sum(w, dtype=np.float64)), 1e-300)
    return float(2.0 * np.sum(wcc, dtype=np.float64) / total - 1.0)


def solve2(sxx: float, sxy: float, syy: float, bx: float, by: float) -> tuple[float, float, float]:
    """(x, y, det): [[sxx, sxy], [sxy, syy]] (x, y) = (bx, by) by Cramer's rule, and the
    matrix's determinant (x, y NaN when it is 0): the estimators' many 2 x 2 solves
    without LAPACK's per-call overhead."""
    det = sxx * syy - sxy * sxy
    if not det:
        return math.nan, math.nan, det
    return (syy * bx - sxy * by) / det, (sxx * by - sxy * bx) / det, det


def lines_meet(f: Field) -> tuple[float, float]:
    """The gradient lines' meeting point (x, y, level px): :func:`meeting_point` of all
    lines, then again started there (its weights then favour the lines that pass near);
    NaN when the lines do not meet."""
    x, y, _ = meeting_point(f, None)
    if math.isfinite(x):
        x, y, _ = meeting_point(f, (x, y))
    return x, y


def meeting_point(
    f: Field, start: tuple[float, float] | None, iters: int = 10, scale: float = 0.15
) -> tuple[float, float, float]:
    """Robust meeting point (x, y) of the gradient lines, and its standard error (level px).

    Minimises sum_i w_i rho(d_i / r_i), d_i = t_i . (c - p_i) the distance from c to the
    line through p_i along its gradient (t_i the unit normal of that line), r_i = |c - p_i|,
    rho the Cauchy loss of scale ``scale`` (radians): iteratively reweighted 2 x 2 solves
    A c = b with A = sum w t t^T, b = sum w t (t . p).
    """
    tx, ty, tp, terms = f.lines
    c = None if start is None else np.array(start, dtype=np.float64)
    wt = f.w
    for _ in range(iters):
        if c is not None:  # in place: r2 = |p - c|^2 + 4, ang2 = d^2 / r2, wt = w / r2 / (1 + ...)
            cx, cy = np.float32(c[0]), np.float32(c[1])  # the weights in the field's float32
            r2 = f.x - cx
            r2 *= r2
            dy = f.y - cy
            dy *= dy
            r2 += dy
            r2 += np.float32(4.0)
            ang2 = tx * cx
            ang2 += ty * cy
            ang2 -= tp
            ang2 *= ang2
            ang2 /= r2
            ang2 *= np.float32(1.0 / scale**2)
            ang2 += np.float32(1.0)
            wt = f.w / r2
            wt /= ang2
        sxx, sxy, syy, bx, by = (float(v) for v in terms @ wt.astype(np.float64))
        x, y, det = solve2(sxx, sxy, syy, bx, by)
        if not math.isfinite(det) or det <= 1e-12 * max((sxx + syy) ** 2, 1e-300):
            break
        new = np.array([x, y])
        done = c is not None and math.hypot(*(new - c)) < 1e-3
        c = new
        if done:
            break
    if c is None:
        return math.nan, math.nan, math.inf
    res = tx * np.float32(c[0]) + ty * np.float32(c[1]) - tp
    dof = max(int(np.count_nonzero(wt)) - 2, 1)
    wt = wt.astype(np.float64)
    sxx, sxy, syy, _, _ = (float(v) for v in terms @ wt)
    det = sxx * syy - sxy * sxy
    if det <= 0:
        return float(c[0]), float(c[1]), math.inf
    trace = (sxx + syy) / det * float(wt @ (res * res)) / dof  # of the covariance
    return float(c[0]), float(c[1]), math.sqrt(max(trace, 0.0))
