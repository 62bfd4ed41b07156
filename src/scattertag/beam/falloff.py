"""Beam centre off the frame from the image's falloff about it, polarisation included.

Off the frame the isotropy search and the gradient lines slide along the radius: nearly
straight contours fit about as well nearer or farther. What fixes the distance is the
shape of the contours, and on a flat detector at a short distance (WAXS) that shape is
not a circle: every pixel's counts carry the polarisation factor of the scattering,
pol = [1 + cos^2(2 theta) - p sin^2(2 theta) cos(2 chi)] / 2 (p the degree of horizontal
polarisation, chi the azimuth from the x axis, cos(2 theta) = d / sqrt(r^2 + d^2) for a
detector at d pixels), so the contours of a falloff about an off-frame beam are flattened
or bent across chi and a circle model puts the centre tens of per cent of the diagonal
off. Here the block means m of a level are modelled as

    m(p) = b + F(r) pol(r, chi; d, p_pol)

with F a free profile in radius bins (the sample's I(q) and the solid angle cos^3(2 theta),
both radial), b one offset (an integrating detector's dark level: log counts would not
separate it), and the centre, d and p_pol fitted (Nelder-Mead from a few distances); F and
b are eliminated by linear least squares (variable projection). The score is the weighted
adjusted R^2 of that model (weights 1 / max(m, 1), Poisson-like).

Used by :func:`scattertag.beam.center._estimate` only for a centre that the rules leave
"not found" (see ``docs/beam_center.md``): one off the frame or near its border is refitted
from where it lies and from the best points off the frame (:func:`fit`, :func:`scan`);
one inside the frame from the off-frame points where circles or the polarisation factor
explain the frame best, when they explain it there at least as well as about the choice
(:func:`off_frame`: a falloff rising to the border, or a polarised lobe on the frame,
whose beam the estimators that assume it on the frame place inside).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import OptimizeResult, minimize

#: Level pixels sampled, evenly strided over the lit ones (the scan's SCAN_KEEP, below).
KEEP = 8000
#: The fit from a choice off the frame or at its border (:func:`fit`, and the flat fit
#: from it) reads every lit pixel of the level pooled in POOL x POOL blocks (:func:`pooled`),
#: at most POOL_KEEP blocks evenly strided (a 250 px level's 62500 pixels as 15625
#: samples): one pixel in eight (KEEP) left the R^2 of a flat valley noisy enough to pick
#: its optimum by chance. The fit from inside (:func:`off_frame`) keeps the KEEP strided
#: pixels: pooled, it moved a centred beam (seed 4's 41) across the border, 39 % off.
POOL, POOL_KEEP = 2, 16000
#: Radius bins of the free profile F, in level pixels.
BIN = 2.0
#: Starting detector distances d, in level diagonals (WAXS 0.1-1, SAXS far beyond: pol ~ 1).
STARTS = (0.15, 0.4, 1.0)
#: Starting centres besides the start: the frame's middle plus these multiples of the
#: start's offset from it (the circle models slide along that ray); the best of them
#: (centre, d) is refined too.
RAY = (0.5, 0.75, 1.5, 2.0, 3.0)
#: Largest detector distance tried, in level diagonals (polarisation is nil beyond).
FARTHEST = 1000.0
#: Nelder-Mead evaluations per start.
MAX_EVALS = 400
#: Nelder-Mead's first simplex about each start: steps in x and y (level diagonals), log d
#: and p (scipy's default, 5 % of each coordinate's value, makes the step in y a fraction
#: of a pixel for a beam just above the frame's top edge and tens of pixels far out).
SIMPLEX = (0.05, 0.05, 0.25, 0.05)
#: Off-frame starts for a choice inside the frame (:func:`off_frame_start`): SCAN_ANGLES
#: rays from the level's middle, on each the points SCAN_BEYOND level diagonals past the
#: border, scored by a circle model on SCAN_KEEP pixels (the circles slide along the ray,
#: so the best of them gives the direction; the fit the distance).
SCAN_ANGLES = 32
SCAN_BEYOND = (0.02, 0.1, 0.25, 0.5, 1.0)
SCAN_KEEP = 2000
#: The degree of polarisation the scan assumes (a synchrotron's 0.9-0.99, and circles for
#: an unpolarised source), and how many of its best points (one a ray) start the fit.
SCAN_P, SCAN_STARTS = 0.9, 2
#: Nelder-Mead's tolerance in R^2 for the flat background's fit (:func:`flat`): its R^2
#: differs from the free profile's by 1e-3 or less where it places the beam.
FLAT_FATOL = 1e-6


@dataclass(frozen=True)
class Samples:
    """Lit pixels of a level: positions (x, y) in level px, block means m, weights w, w m,
    and the sums of w, w m and w m^2."""

    x: np.ndarray
    y: np.ndarray
    m: np.ndarray
    w: np.ndarray
    wm: np.ndarray
    sum_w: float
    sum_wm: float
    sum_wmm: float


@dataclass(frozen=True)
class Falloff:
    """A fitted falloff: centre (x, y) in level px, its R^2, the R^2 of the same model
    without polarisation at the start (a circle model with an offset), distance d (level
    px) and degree of polarisation p."""

    x: float
    y: float
    r2: float
    r2_start: float
    distance: float
    p: float
    scan: tuple[ScanPoint, ...] = ()  # the scan's points that started it (:func:`scan`)
    pooled: bool = False  # read from :func:`pooled` samples (:func:`fit`), not strided ones


@dataclass(frozen=True)
class ScanPoint:
    """A point (x, y) off a level (level px), the distance d (level px) at which the model
    explains the level best about it, and that R^2 (:func:`scan_r2`)."""

    x: float
    y: float
    distance: float
    r2: float


def samples(g: np.ndarray, lit: np.ndarray, keep: int = KEEP) -> Samples:
    """At most ``keep`` lit pixels of a level with g = log(1 + mean counts), (R, C) each."""
    iy, ix = np.nonzero(lit)
    if iy.size > keep:
        pick = np.linspace(0, iy.size - 1, keep).astype(np.int64)
        iy, ix = iy[pick], ix[pick]
    m = np.expm1(g[iy, ix])
    return _weighted(ix.astype(np.float64), iy.astype(np.float64), m, 1.0 / np.maximum(m, 1.0))


def pooled(g: np.ndarray, lit: np.ndarray) -> Samples:
    """The lit pixels of a level (g = log(1 + mean counts), (R, C)) pooled in POOL x POOL
    blocks: per block with n lit pixels the mean m of their means, their mean position
    (x, y) in level px and the weight n / max(m, 1) (a mean of n Poisson-like means); at
    most POOL_KEEP blocks, evenly strided."""
    rows, cols = (-(-k // POOL) * POOL for k in g.shape)
    pad = ((0, rows - g.shape[0]), (0, cols - g.shape[1]))
    on = np.pad(lit, pad).astype(np.float64)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float64)

    def pool(a: np.ndarray) -> np.ndarray:
        """(rows / POOL * cols / POOL,) sums of ``a`` over the blocks."""
        return a.reshape(rows // POOL, POOL, cols // POOL, POOL).sum(axis=(1, 3)).ravel()

    n = pool(on)
    keep = np.flatnonzero(n > 0)
    if keep.size > POOL_KEEP:
        keep = keep[np.linspace(0, keep.size - 1, POOL_KEEP).astype(np.int64)]
    n = n[keep]
    m = pool(np.pad(np.expm1(g), pad) * on)[keep] / n
    x, y = pool(xx * on)[keep] / n, pool(yy * on)[keep] / n
    return _weighted(x, y, m, n / np.maximum(m, 1.0))


def _weighted(x: np.ndarray, y: np.ndarray, m: np.ndarray, w: np.ndarray) -> Samples:
    """:class:`Samples` at (x, y) (level px) of means m with weights w."""
    wm = w * m
    return Samples(x, y, m, w, wm, float(w.sum()), float(wm.sum()), float(wm @ m))


def polarisation(dx: np.ndarray, dy: np.ndarray, distance: float, p: float) -> np.ndarray:
    """[1 + c^2 - p (1 - c^2) cos(2 chi)] / 2 at offsets (dx, dy) from the beam (level px),
    c = cos(2 theta) = d / sqrt(r^2 + d^2), cos(2 chi) = (dx^2 - dy^2) / r^2."""
    return _polarisation(dx * dx + dy * dy, dx * dx - dy * dy, distance, p)


def _polarisation(r2: np.ndarray, cos2: np.ndarray, distance: float, p: float) -> np.ndarray:
    """:func:`polarisation` from r2 = dx^2 + dy^2 and cos2 = dx^2 - dy^2 (r^2 cos 2 chi): the
    operations of 0.5 (1 + c2 - p (1 - c2) cos2 / max(r2, 1e-12)), c2 = d^2 / (r2 + d^2), in
    the same order, into two arrays (the same floats; the fits call it ~1000 times a frame)."""
    return _polarised(_cos2_2theta(r2, distance), r2, cos2, p)


def _cos2_2theta(r2: np.ndarray, distance: float) -> np.ndarray:
    """(N,) c2 = cos^2(2 theta) = d^2 / (r2 + d^2) at squared distances r2 from the beam
    (level px^2), ``distance`` d (level px)."""
    dd = distance * distance
    c2 = r2 + dd
    np.divide(dd, c2, out=c2)
    return c2


def _polarised(c2: np.ndarray, r2: np.ndarray, cos2: np.ndarray, p: float) -> np.ndarray:
    """:func:`_polarisation` from c2 (:func:`_cos2_2theta`), which it overwrites: the
    operations of 0.5 (1 + c2 - p (1 - c2) cos2 / max(r2, 1e-12)) in that order."""
    t = np.subtract(1.0, c2)
    t *= p
    t *= cos2
    t /= np.maximum(r2, 1e-12)
    c2 += 1.0
    c2 -= t
    c2 *= 0.5
    return c2


def r2_of(s: Samples, cx: float, cy: float, distance: float | None, p: float) -> float:
    """Weighted adjusted R^2 of m = b + F(r) pol about (cx, cy) (pol = 1 when ``distance``
    is None); F per BIN-wide radius bin and b eliminated by weighted least squares.

    With P the projection on the bins' columns pol (per bin k: S_pp = sum w pol^2,
    S_mp = sum w m pol, S_p = sum w pol), u = m - P m and v = 1 - P 1: sum w u^2 =
    sum w m^2 - sum_k S_mp^2 / S_pp, sum w v^2 = sum w - sum_k S_p^2 / S_pp, sum w u v =
    sum w m - sum_k S_mp S_p / S_pp, and the residual is sum w u^2 - (sum w u v)^2 /
    sum w v^2 (no per-pixel residuals needed).
    """
    return _r2_about(s, _about(s, cx, cy), distance, p)


def _about(s: Samples, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(r2, cos2, k), each (N,): the samples' squared distances from (cx, cy), dx^2 - dy^2
    and their radius bins (BIN wide from the nearest), what :func:`_r2_about` reads for
    any model about that point (the scan scores four there)."""
    r2, cos2 = _squares(s, cx, cy)
    r = np.sqrt(r2)
    r -= r.min()
    r /= BIN
    return r2, cos2, r.astype(np.intp)


def _squares(s: Samples, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """(r2, cos2), each (N,): dx^2 + dy^2 and dx^2 - dy^2 of the samples about (cx, cy)."""
    dx = s.x - cx
    dx *= dx
    dy = s.y - cy
    dy *= dy
    r2 = dx + dy
    np.subtract(dx, dy, out=dx)
    return r2, dx


def _r2_about(
    s: Samples,
    about: tuple[np.ndarray, np.ndarray, np.ndarray],
    distance: float | None,
    p: float,
) -> float:
    """:func:`r2_of` about the point of ``about`` (:func:`_about`)."""
    r2, cos2, k = about
    if distance is None:
        spp = np.bincount(k, s.w)
        smp, sp = np.bincount(k, s.wm), spp
    else:
        wpol = _polarisation(r2, cos2, distance, p)
        wpol *= s.w
        sp = np.bincount(k, wpol)
        q = wpol / s.w
        q *= wpol
        spp = np.bincount(k, q)
        np.multiply(wpol, s.m, out=q)
        smp = np.bincount(k, q)
    used = spp > 0
    inv = 1.0 / spp[used]
    smp, sp = smp[used], sp[used]
    uu = s.sum_wmm - float((smp * smp * inv).sum())
    vv = s.sum_w - float((sp * sp * inv).sum())
    uv = s.sum_wm - float((smp * sp * inv).sum())
    within = uu - (uv * uv / vv if vv > 1e-12 * s.sum_w else 0.0)
    n, dof = s.m.size, s.m.size - int(used.sum()) - 1
    total = s.sum_wmm - s.sum_wm**2 / s.sum_w
    if total <= 0 or dof < 0.25 * n:
        return 0.0
    return 1.0 - (within / dof) / (total / (n - 1))


def fit(g: np.ndarray, lit: np.ndarray, start: tuple[float, float]) -> Falloff | None:
    """The falloff model fitted from ``start`` (x, y, level px) on a level (g, lit; its
    :func:`pooled` samples) and from the scan's SCAN_STARTS best points
    (:func:`fit_samples`, :func:`scan`: a fit from the start alone stays in the valley of
    nearly equal R^2 the start slid along); r2_start is the circle model's about
    ``start``."""
    s = pooled(g, lit)
    if s.m.size < 256:
        return None
    fitted = fit_samples(s, g.shape, start, start, scan(g, lit)[:SCAN_STARTS])
    return None if fitted is None else replace(fitted, pooled=True)


def fit_samples(
    s: Samples,
    shape: tuple[int, int],
    start: tuple[float, float],
    choice: tuple[float, float],
    extra: list[ScanPoint] | None = None,
) -> Falloff | None:
    """The falloff model fitted from ``start`` (x, y, level px) on the samples ``s`` of a
    level of ``shape`` (rows, cols): Nelder-Mead over (x, y, log d, p) from ``start`` at
    each distance of STARTS (p = 0.9) and from the best of the centres along the ray from
    the level's middle through it (RAY, scored at each distance of STARTS), and from each
    point of ``extra`` at its distance (p = 0.9); the best fit kept, its r2_start the
    circle model's R^2 about ``choice``."""
    diag = math.hypot(*shape)
    mx, my = (shape[1] - 1) / 2, (shape[0] - 1) / 2
    far = math.log(FARTHEST * diag)
    cost = _cost(r2_of, s, far)

    def seed(t: float, d: float) -> np.ndarray:
        """(x, y, log d, p): the centre t of the way from the middle to ``start``."""
        x, y = mx + t * (start[0] - mx), my + t * (start[1] - my)
        return np.array([x, y, math.log(d * diag), 0.9])

    ray = min((seed(t, d) for t in RAY for d in STARTS), key=cost)
    more = [np.array([p.x, p.y, math.log(p.distance), 0.9]) for p in extra or []]
    best = _descend(cost, [seed(1.0, d) for d in STARTS] + [ray] + more, diag, 1e-5)
    if best is None:
        return None
    r0 = r2_of(s, choice[0], choice[1], None, 0.0)
    return _falloff(best, far, r0, tuple(extra or ()))


def _cost(
    model: Callable[[Samples, float, float, float, float], float], s: Samples, far: float
) -> Callable[[np.ndarray], float]:
    """The cost -R^2 of ``model`` (:func:`r2_of`, :func:`r2_flat`) on the samples ``s`` at
    v = (x, y, log d, p): d at most e^far (level px), p clipped to [0, 1]."""

    def cost(v: np.ndarray) -> float:
        return -model(s, v[0], v[1], math.exp(min(v[2], far)), min(max(v[3], 0.0), 1.0))

    return cost


def _descend(
    cost: Callable[[np.ndarray], float], starts: list[np.ndarray], diag: float, fatol: float
) -> OptimizeResult | None:
    """The lowest of Nelder-Mead runs of ``cost`` from each of ``starts`` (x, y, log d, p;
    the first simplex SIMPLEX wide, x and y in level diagonals ``diag``, to 0.5 px and
    ``fatol`` in R^2); None where there is none or it is not finite."""
    steps = np.diag(np.asarray(SIMPLEX) * np.array([diag, diag, 1.0, 1.0]))
    best = None
    for v in starts:
        o = minimize(
            cost,
            v,
            method="Nelder-Mead",
            options={
                "xatol": 0.5,
                "fatol": fatol,
                "maxfev": MAX_EVALS,
                "initial_simplex": np.vstack([v, v + steps]),
            },
        )
        if best is None or o.fun < best.fun:
            best = o
    return best if best is not None and np.all(np.isfinite(best.x)) else None


def _falloff(
    best: OptimizeResult, far: float, r2_start: float, scan: tuple[ScanPoint, ...]
) -> Falloff:
    """The :class:`Falloff` at the minimum ``best`` of a :func:`_cost` (d at most e^far)."""
    x, y, logd, p = (float(v) for v in best.x)
    p = min(max(p, 0.0), 1.0)
    return Falloff(x, y, -float(best.fun), r2_start, math.exp(min(logd, far)), p, scan)


def _obliquity(r2: np.ndarray, cos2: np.ndarray, distance: float, p: float) -> np.ndarray:
    """cos^3(2 theta) x :func:`_polarisation`: a flat detector's solid angle times the
    polarisation factor, from r2 = dx^2 + dy^2 and cos2 = dx^2 - dy^2 (level px^2)."""
    c2 = _cos2_2theta(r2, distance)
    o = np.sqrt(c2)
    o *= c2  # c2 sqrt(c2), then times the polarisation factor of the same c2
    o *= _polarised(c2, r2, cos2, p)
    return o


def r2_flat(s: Samples, cx: float, cy: float, distance: float, p: float) -> float:
    """Weighted R^2 of m = b + A o about (cx, cy) (level px), o the :func:`_obliquity` at
    ``distance`` (level px) and ``p``, b and A > 0 by weighted least squares: with o' = o
    less its weighted mean, R^2 = (sum w m o')^2 / (sum w o'^2 sum w (m - mean)^2); 0
    where A <= 0 or o is flat."""
    r2, cos2 = _squares(s, cx, cy)
    o = _obliquity(r2, cos2, distance, p)
    wo = np.multiply(s.w, o, out=cos2)  # the same operations, into arrays done with
    o -= float(wo.sum()) / s.sum_w
    np.multiply(s.w, o, out=wo)
    soo, smo = float(wo @ o), float(wo @ s.m)
    total = s.sum_wmm - s.sum_wm**2 / s.sum_w
    if smo <= 0.0 or total <= 0.0 or soo <= 1e-12 * s.sum_w:
        return 0.0
    return smo * smo / (soo * total)


def flat(
    g: np.ndarray, lit: np.ndarray, free: Falloff, choice: tuple[float, float]
) -> Falloff | None:
    """The falloff of a flat background (:func:`r2_flat`: the solid angle times the
    polarisation factor, no free profile) fitted on a level (g, lit) by Nelder-Mead over
    (x, y, log d, p) from the free fit ``free``, from ``choice`` (x, y, level px) at each
    distance of STARTS and from the scan's points that started ``free``; the best kept,
    its r2_start ``free``'s. Where the free profile's R^2 is flat along the radius, the
    profile that a flat background's obliquity must have fixes the distance."""
    s = pooled(g, lit) if free.pooled else samples(g, lit)  # R^2 comparable with free's
    if s.m.size < 256:
        return None
    diag = math.hypot(*g.shape)
    far = math.log(FARTHEST * diag)
    # a free fit whose log d ran to -inf has d = 0 (log undefined): start it at 1e-9 px
    log_d = math.log(free.distance) if free.distance > 0.0 else math.log(1e-9)
    starts = [np.array([free.x, free.y, log_d, free.p])]
    starts += [np.array([choice[0], choice[1], math.log(d * diag), SCAN_P]) for d in STARTS]
    starts += [np.array([q.x, q.y, math.log(q.distance), SCAN_P]) for q in free.scan]
    best = _descend(_cost(r2_flat, s, far), starts, diag, FLAT_FATOL)
    if best is None or best.fun >= 0.0:
        return None
    return _falloff(best, far, free.r2_start, free.scan)


def rays(shape: tuple[int, int], beyond: tuple[float, ...]) -> np.ndarray:
    """(n, 2) points (x, y) off a level of ``shape`` (rows, cols): on SCAN_ANGLES rays from
    its middle, ``beyond`` level diagonals past the border."""
    rows, cols = shape
    diag = math.hypot(rows, cols)
    a = np.linspace(0.0, 2.0 * math.pi, SCAN_ANGLES, endpoint=False)
    ux, uy = np.cos(a), np.sin(a)
    with np.errstate(divide="ignore"):  # rays along an axis meet one pair of sides only
        border = np.minimum(cols / 2 / np.abs(ux), rows / 2 / np.abs(uy))
    t = (border[:, None] + diag * np.asarray(beyond)[None, :]).ravel()
    k = len(beyond)
    return np.column_stack(
        ((cols - 1) / 2 + t * np.repeat(ux, k), (rows - 1) / 2 + t * np.repeat(uy, k))
    )


def scan_r2(s: Samples, cx: float, cy: float, diag: float) -> tuple[float, float]:
    """(R^2, d): the best :func:`r2_of` about (cx, cy) (level px) of circles (d FARTHEST
    level diagonals ``diag``) and of the polarisation factor at each distance d of STARTS
    (p = SCAN_P)."""
    about = _about(s, cx, cy)  # the four models read the same distances and bins
    return max(
        [(_r2_about(s, about, None, 0.0), FARTHEST * diag)]
        + [(_r2_about(s, about, d * diag, SCAN_P), d * diag) for d in STARTS]
    )


def scan(g: np.ndarray, lit: np.ndarray) -> list[ScanPoint]:
    """The best point of each ray off a level (:func:`rays`), best first, scored by
    :func:`scan_r2` on SCAN_KEEP lit pixels; [] when under 256 are lit."""
    s = samples(g, lit, SCAN_KEEP)
    pts = rays(g.shape, SCAN_BEYOND)
    if s.m.size < 256 or pts.size == 0:
        return []
    diag = math.hypot(*g.shape)
    scored = [ScanPoint(float(x), float(y), *scan_r2(s, x, y, diag)[::-1]) for x, y in pts]
    k = len(SCAN_BEYOND)  # rays() lists each ray's points together
    per_ray = [max(scored[i : i + k], key=lambda p: p.r2) for i in range(0, len(scored), k)]
    return sorted(per_ray, key=lambda p: -p.r2)


def _scan_beats(g: np.ndarray, lit: np.ndarray, choice: tuple[float, float]) -> list[ScanPoint]:
    """:func:`scan` of a level, or [] when its best point explains the level worse than
    ``choice`` (x, y, level px) does (:func:`scan_r2`)."""
    found = scan(g, lit)
    s = samples(g, lit, SCAN_KEEP)
    if not found or found[0].r2 < scan_r2(s, choice[0], choice[1], math.hypot(*g.shape))[0]:
        return []
    return found


def off_frame_start(
    g: np.ndarray, lit: np.ndarray, choice: tuple[float, float]
) -> tuple[float, float] | None:
    """The point off a level (:func:`scan`) about which circles or the polarisation factor
    explain the level best, if they explain it at least as well there as about ``choice``
    (x, y, level px); else None."""
    found = _scan_beats(g, lit, choice)
    return (found[0].x, found[0].y) if found else None


def off_frame(g: np.ndarray, lit: np.ndarray, choice: tuple[float, float]) -> Falloff | None:
    """The falloff model fitted from the off-frame start of a level (:func:`off_frame_start`;
    the scan's next best point too, SCAN_STARTS in all) for a ``choice`` (x, y, level px)
    inside it; r2_start the circle model's about the choice; None when no off-frame point
    explains the level as well as the choice."""
    found = _scan_beats(g, lit, choice)
    if not found:
        return None
    s = samples(g, lit)
    return fit_samples(s, g.shape, (found[0].x, found[0].y), choice, found[1:SCAN_STARTS])
