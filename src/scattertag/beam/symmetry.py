"""Point symmetry: small-angle patterns obey I(q) = I(-q), so g(2c - p) matches g(p).

:func:`symmetry_map` correlates g with its reflection through every centre at once (four
FFT convolutions); :func:`refine_symmetry` refines a centre by Gauss-Newton on the
residual g(p) - g(2c - p), a flat field's ramp free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from scattertag.beam.boxes import nonzero2d
from scattertag.beam.order_stats import median
from scattertag.beam.pyramid import Level
from scattertag.beam.reflection import parabola, reflection_sums

#: Point symmetry needs at least this fraction of the lit pixels to have a lit partner.
MIN_OVERLAP = 0.05
#: A second point-symmetry peak is sought among centres whose reflection overlaps this much.
WIDE_OVERLAP = 0.3
#: The axis of a long shadow is searched from this fraction of the frame's side beyond its
#: tip to this fraction into it (a wedge's point lies 2.5-6 %, a bar's end 1-3 % from the beam).
AXIS_REACH = (0.015, 0.08)
#: Point symmetry's Gauss-Newton (:func:`refine_symmetry`): steps, and the largest (level px).
SYMMETRY_ITERS, SYMMETRY_STEP = 8, 2.0
#: ... and the step (level px) under which it stops: 0.2 px at the candidates' fine level of
#: a 1000 px frame (blocks of 4), a tenth of the 2 px goal (0.01 took ~27 % more steps, lab
#: notebook, session 15).
SYMMETRY_TOL = 0.05


def symmetry_map(level: Level, min_overlap: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Correlation of g with its reflection through every centre c = s / 2, and the overlap.

    For s = 2c, with m the validity and G = g m:
    n(s) = (m * m)(s), S1 = (G * m)(s), S2 = (G^2 * m)(s), S12 = (G * G)(s) (convolutions),
    rho(s) = (S12 - S1^2 / n) / (S2 - S1^2 / n), the normalised correlation of g(p) and
    g(s - p) over the valid pairs; returned (2R - 1, 2C - 1) with NaN where the overlap is
    below ``min_overlap`` of the valid pixels, and the overlap fraction.
    """
    m = level.lit.astype(np.float64)
    n, s1, s2, s12 = reflection_sums(level.g, m)
    total = max(m.sum(), 1.0)
    return pair_correlation(n, s1, s2, s12, min_overlap * total), n / total


def pair_correlation(
    n: np.ndarray, s1: np.ndarray, s2: np.ndarray, s12: np.ndarray, least: float
) -> np.ndarray:
    """Normalised correlation of the pairs (g(p), g(p')) from their sums over n pairs:
    (S12 - S1^2 / n) / (S2 - S1^2 / n); NaN where n is below max(least, 16)."""
    enough = n > max(least, 16.0)
    mean_sq = np.where(enough, s1 * s1 / np.maximum(n, 1.0), 0.0)
    var = s2 - mean_sq
    return np.where(
        enough & (var > 1e-9 * np.abs(s2).max()), (s12 - mean_sq) / np.maximum(var, 1e-300), np.nan
    )


def symmetry_peaks(rho: np.ndarray, overlap: np.ndarray) -> list[tuple[float, float, float]]:
    """(x, y, rho) of the best point-symmetry centres of a level, sub-pixel, from its map
    (:func:`symmetry_map`): the best of all centres, and the best of those whose reflection
    overlaps at least WIDE_OVERLAP of the lit pixels when that is another point (a smooth
    frame correlates well with itself over a thin band at its edge, so the best of all is
    often a centre on the border)."""
    out: list[tuple[float, float, float]] = []
    for floor in (0.0, WIDE_OVERLAP):
        r = np.where(overlap >= floor, rho, np.nan)
        if not np.isfinite(r).any():
            continue
        i, j = (int(k) for k in np.unravel_index(np.nanargmax(r), r.shape))
        dy = parabola(rho, i, j, axis=0)
        dx = parabola(rho, i, j, axis=1)
        peak = ((j + dx) / 2.0, (i + dy) / 2.0, float(rho[i, j]))
        if not out or math.hypot(peak[0] - out[0][0], peak[1] - out[0][1]) > 1.0:
            out.append(peak)
    return out


def axis_start(
    rho: np.ndarray, coarse: Level, tip: tuple[float, float, float, float], side: int
) -> tuple[float, float] | None:
    """The most point-symmetric centre (frame px) on the axis of a long shadow, from
    AXIS_REACH[0] of the frame's longer side ``side`` beyond its tip to AXIS_REACH[1] into
    it (:func:`scattertag.beam.shadow.shadow_tips`), on the coarse level's map."""
    x, y, ux, uy = tip
    t = np.arange(-AXIS_REACH[0] * side, AXIS_REACH[1] * side, 0.5 * coarse.b)
    off = (coarse.b - 1) / 2  # frame -> coarse level pixels, s = 2c on the map
    cx, cy = (x + t * ux - off) / coarse.b, (y + t * uy - off) / coarse.b
    i, j = np.rint(2 * cy).astype(np.int64), np.rint(2 * cx).astype(np.int64)
    inside = (i >= 0) & (i < rho.shape[0]) & (j >= 0) & (j < rho.shape[1])
    if not inside.any():
        return None
    r = np.full(t.size, np.nan)
    r[inside] = rho[i[inside], j[inside]]
    if not np.isfinite(r).any():
        return None
    k = int(np.nanargmax(r))
    return x + t[k] * ux, y + t[k] * uy


def bilinear(maps: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Bilinear samples (N,) of each of the K (R, C) ``maps`` at (x, y) (N,) level pixels
    (inside the frame); the corners and weights found once for all maps
    (:func:`corner_samples`)."""
    rows, cols = maps[0].shape
    i0 = np.minimum(y.astype(np.int64), rows - 2)
    j0 = np.minimum(x.astype(np.int64), cols - 2)
    fy, fx = y - i0, x - j0
    w = ((1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx)
    return corner_samples(maps, i0 * cols + j0, w)


def corner_samples(
    maps: Sequence[np.ndarray], k: np.ndarray, w: Sequence[np.ndarray | float]
) -> list[np.ndarray]:
    """w0 f[k] + w1 f[k + 1] + w2 f[k + C] + w3 f[k + C + 1] (N,) of each (R, C) map f: the
    bilinear samples whose top-left corners are the flat indices k (N,) (on the map, with
    their three other corners), weights w (4 arrays (N,) or 4 floats); one 1-D gather per
    map and corner (faster than gathering (N, K) rows of a stack)."""
    cols = maps[0].shape[1]
    idx = (k, k + 1, k + cols, k + cols + 1)
    out = []
    for m in maps:  # w0 f0 + w1 f1 + w2 f2 + w3 f3, added in that order in place
        f = np.ravel(m)
        acc = f.take(idx[0], mode="clip")  # the corners lie on the map: clip changes none
        acc *= w[0]
        part = np.empty_like(acc)
        for wi, ii in zip(w[1:], idx[1:]):
            np.take(f, ii, out=part, mode="clip")  # unbuffered (mode "raise" copies ``out``)
            part *= wi
            acc += part
        out.append(acc)
    return out


def shared_fraction(s: float) -> tuple[int, float, int] | None:
    """(floor, fraction, nearest whole number) of s (level px), those of s - p less p for
    every whole p in [0, s] (s - p is exact there: a multiple of s's last place, no larger
    than s); None where the fraction is 0 (s - p may be the level's last pixel, which
    :func:`bilinear` reads as the corner before it) or 1/2 (np.rint rounds half to even)."""
    whole = math.floor(s)
    t = s - whole
    if t == 0.0 or t == 0.5:
        return None
    return whole, t, whole + int(t > 0.5)


def _partners(
    level: Level, ix: np.ndarray, iy: np.ndarray, kp: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """(use, [g, dg/dx, dg/dy]): the pixels p = (ix, iy) (N,) (whole numbers; flat indices
    kp) whose partner q = 2c - p lies on the level and whose nearest pixel to q is in the
    interior (indices into p), and the smoothed level and its gradient bilinear at those q.

    Every q shares the fraction of 2c (:func:`shared_fraction`): the four weights are
    numbers, the corners and nearest pixels the flat indices of floor(2c) and round(2c) less
    kp, the same floats as :func:`bilinear` of each q (~0.7 of its CPU). Where the fraction
    is 0 or 1/2, each q is floored and rounded as it is."""
    rows, cols = level.g.shape
    inner = level.interior(1).ravel()
    sx, sy = shared_fraction(2 * float(c[0])), shared_fraction(2 * float(c[1]))
    if sx is None or sy is None:
        qx, qy = 2 * c[0] - ix, 2 * c[1] - iy
        inside = (qx >= 0) & (qx <= cols - 1) & (qy >= 0) & (qy <= rows - 1)
        qi, qj = np.rint(qy[inside]).astype(np.int64), np.rint(qx[inside]).astype(np.int64)
        use = np.flatnonzero(inside)[inner.take(qi * cols + qj)]
        return use, bilinear(level.smooth_grad, qx[use], qy[use])
    (jx, fx, nx), (jy, fy, ny) = sx, sy
    # 0 < q < cols - 1 (q is never whole): p within [floor(2c) - cols + 2, floor(2c)]
    inside = (ix >= jx - cols + 2) & (ix <= jx) & (iy >= jy - rows + 2) & (iy <= jy)
    at = np.flatnonzero(inside)
    use = at[inner.take((ny * cols + nx) - kp.take(at))]
    w = ((1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx)
    return use, corner_samples(level.smooth_grad, (jy * cols + jx) - kp.take(use), w)


def symmetry_sample(
    level: Level, iy: np.ndarray, ix: np.ndarray, keep: int
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """(iy, ix, N, g): at most ``keep`` of the N pixels (iy, ix), evenly strided (as
    floats), and the smoothed level there (:func:`refine_symmetry`)."""
    total = iy.size
    if iy.size > keep:
        pick = np.linspace(0, iy.size - 1, keep).astype(np.int64)
        iy, ix = iy[pick], ix[pick]
    return iy.astype(np.float64), ix.astype(np.float64), total, level.smooth[iy, ix]


def symmetry_reach(radius: float, iters: int = SYMMETRY_ITERS) -> float:
    """How far from its start (level px) :func:`refine_symmetry` over the pixels within
    ``radius`` of it, and :func:`_sharpness` about where it ends, read the level: the centre
    moves at most SYMMETRY_STEP a step, a pixel's partner 2c - p lies as far beyond the
    centre as the pixel, and a bilinear sample reads the next pixel."""
    return radius + 2 * SYMMETRY_STEP * iters + 1


def refine_symmetry(
    level: Level,
    start: tuple[float, float],
    iters: int = SYMMETRY_ITERS,
    keep: int = 12000,
    ramp: bool = True,
    radius: float = math.inf,
) -> tuple[float, float, float, float]:
    """Gauss-Newton on r(p) = g(p) - g(2c - p) - 2 a . (p - c) / L from ``start``:
    (x, y, sigma, rho) in level px; only pixels p within ``radius`` (level px) of ``start``.

    a is a linear ramp of g across the level (L its longest side): a detector's flat field
    (2-20 % across the frame) or an absorption gradient multiplies the counts by a ramp,
    which adds an antisymmetric term to g that a centre alone would absorb by moving
    (several pixels on smooth small-angle frames). Huber-weighted; sigma is the standard
    error of c, rho the correlation of the pairs. At least MIN_OVERLAP of the lit pixels
    must have a lit partner.
    """
    gs = level.smooth
    inner = level.interior(1)
    if math.isfinite(radius):
        iy, ix = nonzero2d(inner)
        near = (ix - start[0]) ** 2 + (iy - start[1]) ** 2 <= radius * radius
        iy, ix, total, gp = symmetry_sample(level, iy[near], ix[near], keep)
    else:  # the same pixels from every start: sampled once per level
        key = ("symmetry", keep)
        if key not in level._inner:
            iy, ix = nonzero2d(inner)
            level._inner[key] = symmetry_sample(level, iy, ix, keep)
        iy, ix, total, gp = level._inner[key]
    rows, cols = gs.shape
    kp = (iy * cols + ix).astype(np.int64)  # the pixels' flat indices (whole numbers)
    scale = float(max(rows, cols))
    k = 4 if ramp else 2
    theta = np.zeros(4)  # cx, cy, ax, ay
    theta[:2] = start
    sigma, rho = math.inf, 0.0
    pairs: tuple[np.ndarray, np.ndarray] | None = None
    for _ in range(iters):
        c, a = theta[:2], theta[2:]
        use, (gq, gxq, gyq) = _partners(level, ix, iy, kp, c)
        if use.size < max(50, MIN_OVERLAP * min(total, keep)):
            return math.nan, math.nan, math.inf, 0.0
        dx, dy = (ix[use] - c[0]) / scale, (iy[use] - c[1]) / scale
        jac = np.stack(
            [-2.0 * gxq + 2 * a[0] / scale, -2.0 * gyq + 2 * a[1] / scale, -2.0 * dx, -2.0 * dy]
        )[:k]
        r = gp[use] - gq - 2.0 * (a[0] * dx + a[1] * dy)
        s = 1.4826 * median(np.abs(r - median(r))) + 1e-12
        w = np.minimum(1.0, 1.5 * s / np.maximum(np.abs(r), 1e-300))
        jw = jac * w
        h = jw @ jac.T
        det = h[0, 0] * h[1, 1] - h[0, 1] * h[1, 0]  # of the centre's block, without LAPACK
        if det <= 1e-12 * max((h[0, 0] + h[1, 1]) ** 2, 1e-300):
            break
        try:
            cov = np.linalg.inv(h)
        except np.linalg.LinAlgError:
            break
        step = -cov @ (jw @ r)
        norm = float(np.hypot(*step[:2]))
        if norm > SYMMETRY_STEP:
            step *= SYMMETRY_STEP / norm
        theta[:k] += step
        sigma = float(np.sqrt(max(cov[0, 0] + cov[1, 1], 0.0)) * s)
        pairs = (gp[use], gq)  # rho of the last completed step's pairs, computed once
        if norm < SYMMETRY_TOL:
            break
    if pairs is not None:
        rho = correlation(*pairs)
    return float(theta[0]), float(theta[1]), sigma, rho


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of a and b (N,) (``np.corrcoef``'s, to rounding, without its
    covariance matrix); 0 when either is constant."""
    a = a - a.mean()
    b = b - b.mean()
    saa, sbb = float(a @ a), float(b @ b)
    if not (saa > 0 and sbb > 0):
        return 0.0
    return min(max(float(a @ b) / math.sqrt(saa * sbb), -1.0), 1.0)
