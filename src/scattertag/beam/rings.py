"""Rings and arcs: ridge pixels of a level grouped into arcs, and circles through them.

:func:`ridges` finds bright ridges (Hessian) and labels the connected ones as arcs;
:func:`fit_arcs` fits circles of a common centre through the arcs (Gauss-Newton on the
radial residuals, one radius per ring); :func:`arc_consensus` finds the centres that
several arcs share (a RANSAC over arcs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage

from scattertag.beam.boxes import nonzero2d
from scattertag.beam.gradient import solve2
from scattertag.beam.grid import hypot
from scattertag.beam.order_stats import median
from scattertag.beam.pyramid import Level

#: Arcs that are circles about the common centre (rms of their distances to it at most
#: TIE_RMS level px: a stop's edge or a spot's rim is none) and whose mean radii lie within
#: TIE_RADIUS level px of the smallest of them are one ring (one radius,
#: :func:`_tie_rings`), regrouped about each new centre TIE_ROUNDS times at most.
TIE_RMS, TIE_RADIUS, TIE_ROUNDS = 0.5, 1.0, 3


@dataclass(frozen=True)
class Ridges:
    """Ridge pixels of a level: positions (x, y), weight (ridge strength), arc label 0..J-1;
    ``rows``, ``cols`` every pixel that passed the ridge test (before the crest and the
    arcs' size were asked), where a finer level may look again (:func:`_retrace`)."""

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    label: np.ndarray
    count: int
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    cols: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def only(self, arcs: np.ndarray) -> Ridges:
        """The ridge pixels of the arcs where ``arcs`` ((J,) bool), relabelled 0..K-1."""
        keep = arcs[self.label]
        return replace(
            self,
            x=self.x[keep],
            y=self.y[keep],
            w=self.w[keep],
            label=(np.cumsum(arcs) - 1)[self.label[keep]],
            count=int(arcs.sum()),
        )


def _hessian(
    level: Level, iy: np.ndarray, ix: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(g_xx, g_yx, g_yy, l1, l2), float32, of the smoothed level at interior pixels (iy, ix):
    central differences of its gradient in float32 (as ``np.gradient`` takes them of the
    gradient rounded to float32), l1 <= l2 the eigenvalues."""
    gy, gx = level.grad
    cols = gy.shape[1]
    k = iy * cols + ix
    fy, fx = gy.ravel(), gx.ravel()
    f32 = np.float32
    gyy = (fy.take(k + cols).astype(f32) - fy.take(k - cols).astype(f32)) * f32(0.5)
    gyx = (fy.take(k + 1).astype(f32) - fy.take(k - 1).astype(f32)) * f32(0.5)
    gxx = (fx.take(k + 1).astype(f32) - fx.take(k - 1).astype(f32)) * f32(0.5)
    half = (gxx + gyy) * f32(0.5)
    root = np.sqrt((gxx - gyy) ** 2 * f32(0.25) + gyx * gyx)
    return gxx, gyx, gyy, half - root, half + root


def _hessian_maps(
    level: Level,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(g_xx, g_yx, g_yy, l1, l2), each (R - 2, C - 2), of the smoothed level at every pixel
    but the border's, [1:-1, 1:-1]: :func:`_hessian`'s differences, the same floats, as
    whole-array slices (no index arrays, no gathers: cheaper where most pixels are asked)."""
    gxx, gyx, gyy, half, root = _eigen_maps(level)
    return gxx, gyx, gyy, half - root, half + root


def _eigen_maps(
    level: Level,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(g_xx, g_yx, g_yy, half, root) of :func:`_hessian_maps`, whose eigenvalues are
    l1, l2 = half -+ root: the ridge test takes l2 only where l1 passes. In float32 (about
    half the CPU of float64's passes over the level; the gradient's differences keep ~6
    digits where they matter, on ridges), the same floats as :func:`_hessian`."""
    f32 = np.float32
    gy, gx = (d.astype(f32) for d in level.grad)
    gyy = np.subtract(gy[2:, 1:-1], gy[:-2, 1:-1])
    gyy *= f32(0.5)  # in place from here on: the same operations, fewer temporaries
    gyx = np.subtract(gy[1:-1, 2:], gy[1:-1, :-2])
    gyx *= f32(0.5)
    gxx = np.subtract(gx[1:-1, 2:], gx[1:-1, :-2])
    gxx *= f32(0.5)
    half = np.add(gxx, gyy)
    half *= f32(0.5)
    root = np.subtract(gxx, gyy)
    root *= root
    root *= f32(0.25)
    root += gyx * gyx
    np.sqrt(root, out=root)
    return gxx, gyx, gyy, half, root


def _spread(a: np.ndarray) -> float:
    """Robust standard deviation of a (N,): 1.4826 times its median absolute deviation
    (plus 1e-12: never 0)."""
    return 1.4826 * median(np.abs(a - median(a))) + 1e-12


def ridges(level: Level, min_size: int = 12, near: np.ndarray | None = None) -> Ridges:
    """Pixels on bright ridges (rings, arcs): Hessian eigenvalue l1 << 0 and |l1| > 2 |l2|.

    Connected ridge pixels (8-neighbours) form one arc; arcs under ``min_size`` pixels are
    dropped. l1 <= l2 are the eigenvalues of the Hessian of the smoothed log image; the
    noise level is the robust spread of l1 over (a regular sample of) the interior pixels.
    With ``near`` ((R, C) bool) only its pixels may be ridge pixels (the Hessian is taken
    there alone).
    """
    inner = level.interior(math.ceil(2 * level.sigma) + 1)
    core = inner[1:-1, 1:-1]  # the interior lies off the border: all of it
    total = int(np.count_nonzero(core))
    if total < 100:
        return Ridges(*(np.empty(0),) * 3, np.empty(0, np.int64), 0)
    step = max(1, total // 16384)  # the noise level from <= ~32k samples
    if near is None:  # every interior pixel is tested: the Hessian as whole maps
        gxx, gyx, gyy, half, root = _eigen_maps(level)
        l1 = half - root
        flat = np.flatnonzero(core)  # row-major, as nonzero2d orders the pixels
        few = l1.ravel().take(flat[::step]).astype(np.float64)
        noise = _spread(few)
        k = np.flatnonzero(core & (l1 < -4.0 * noise))  # l2 only where l1 passes
        lam = l1.ravel().take(k)
        l2 = half.ravel().take(k) + root.ravel().take(k)
        sel = -lam > 2.0 * np.abs(l2)
        k, lam = k[sel], lam[sel]
        a, b, c = (m.ravel().take(k) for m in (gxx, gyx, gyy))
        iy, ix = np.divmod(k, core.shape[1])
        iy, ix = iy + 1, ix + 1
    else:
        iy, ix = nonzero2d(inner)
        few = _hessian(level, iy[::step], ix[::step])[3].astype(np.float64)
        iy, ix = nonzero2d(inner & near)
        gxx, gyx, gyy, l1, l2 = _hessian(level, iy, ix)
        noise = _spread(few)
        sel = (l1 < -4.0 * noise) & (-l1 > 2.0 * np.abs(l2))
        iy, ix = iy[sel], ix[sel]
        a, b, c, lam = gxx[sel], gyx[sel], gyy[sel], l1[sel]
    rows, cols = iy, ix
    a, b, c, lam = (v.astype(np.float64) for v in (a, b, c, lam))  # the crests in float64
    gy, gx = level.grad
    # unit eigenvector e of l1 (across the ridge) and the Newton step t to the ridge's crest
    ex, ey = np.where(np.abs(a - lam) > np.abs(c - lam), (b, lam - a), (lam - c, b))
    norm = np.maximum(np.hypot(ex, ey), 1e-300)
    ex, ey = ex / norm, ey / norm
    t = -(gx[iy, ix] * ex + gy[iy, ix] * ey) / lam
    crest = np.abs(t) <= 0.7
    mask = np.zeros_like(inner)
    mask[iy[crest], ix[crest]] = True
    lab, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    iy, ix, t, ex, ey, lam = iy[crest], ix[crest], t[crest], ex[crest], ey[crest], lam[crest]
    arc = lab[iy, ix] - 1
    big = np.bincount(arc, minlength=n) >= min_size
    keep = big[arc]
    renumber = np.cumsum(big) - 1
    return Ridges(
        (ix + t * ex)[keep],
        (iy + t * ey)[keep],
        -lam[keep],
        renumber[arc[keep]],
        int(big.sum()),
        rows,
        cols,
    )


def level_ridges(level: Level) -> Ridges:
    """Ridge pixels of the level (:func:`ridges`), traced once for every estimator (kept by
    the level)."""
    if "ridges" not in level._inner:
        level._inner["ridges"] = ridges(level)
    return level._inner["ridges"]


def fit_arcs(
    rd: Ridges, start: tuple[float, float] | None = None, iters: int = 15, tie: bool = True
) -> tuple[float, float, float, int]:
    """Circles with a common centre through the arcs: (x, y, sigma, arcs used) in level px.

    Algebraic start (Kasa, when ``start`` is None): for arc j, x^2 + y^2 = 2 c . p + e_j,
    linear in c once each arc's weighted mean is removed. Then Gauss-Newton on the radial
    residuals d_i = |p_i - c| - R_j (R_j the arc's weighted mean radius), Cauchy-weighted
    (scale 1 px), dropping arcs whose rms residual exceeds 3 times the median arc's
    (:func:`circles`); then, with ``tie``, once more with one radius per ring
    (:func:`_tie_rings`).
    """
    if rd.count < 1:
        return math.nan, math.nan, math.inf, 0
    if start is None:
        w = rd.w
        xc, yc = _centred(rd.x, w, rd.label, rd.count), _centred(rd.y, w, rd.label, rd.count)
        zc = _centred(rd.x**2 + rd.y**2, w, rd.label, rd.count)
        sxx, sxy, syy = float(w @ (xc * xc)), float(w @ (xc * yc)), float(w @ (yc * yc))
        x, y, det = solve2(sxx, sxy, syy, float(w @ (xc * zc)), float(w @ (yc * zc)))
        if det <= 1e-9 * (sxx + syy) ** 2:
            return math.nan, math.nan, math.inf, 0
        start = (0.5 * x, 0.5 * y)
    ring = np.arange(rd.count)
    x, y, sigma, alive = circles(rd, start, ring, np.ones(rd.count, bool), iters)
    if not math.isfinite(x):
        return math.nan, math.nan, math.inf, 0
    if not tie:
        return x, y, sigma, int(alive.sum())
    return _tie_rings(rd, (x, y, sigma, alive), iters)


def _centred(
    v: np.ndarray, wt: np.ndarray, lab: np.ndarray, n: int, tot: np.ndarray | None = None
) -> np.ndarray:
    """v less the weighted (wt) mean of v over its group (``lab`` in 0..n-1); ``tot`` each
    group's sum of wt when known."""
    tot = np.bincount(lab, wt, n) if tot is None else tot
    return v - (np.bincount(lab, wt * v, n) / np.maximum(tot, 1e-300))[lab]


def circles(
    rd: Ridges,
    start: tuple[float, float],
    ring: np.ndarray,
    alive: np.ndarray,
    iters: int,
) -> tuple[float, float, float, np.ndarray]:
    """Gauss-Newton from ``start`` for one centre and one radius per ring through the arcs
    (``ring`` (J,) int: arc j lies on ring ``ring[j]``, one radius each; arcs not ``alive``
    (J,) bool left out): (x, y, sigma, alive) in level px.

    Residuals d_i = |p_i - c| - R_k (R_k the ring's weighted mean radius), Cauchy weights
    (scale 1 px); an arc whose rms residual exceeds 3 times the median live arc's (at least
    0.5 px) is dropped. sigma: the centre's standard error (trace of the covariance).
    """
    lab, n = rd.label, rd.count
    lab_r = ring[lab]
    m = int(ring.max()) + 1
    own = m == n and bool((ring == np.arange(n)).all())  # a radius per arc
    w = rd.w
    cx, cy = float(start[0]), float(start[1])  # Python floats: the same float64 arithmetic
    alive = alive.copy()
    live = int(np.count_nonzero(alive))
    sigma = math.inf
    for _ in range(iters):
        dx, dy = rd.x - cx, rd.y - cy
        rho = np.maximum(hypot(dx, dy), 1e-9)
        ux, uy = dx / rho, dy / rho
        wa = w if live == n else w * alive[lab]  # w * True is w: no gather while all live
        tot = np.bincount(lab_r, wa, m)
        d = _centred(rho, wa, lab_r, m, tot)
        per_arc = tot if own else np.bincount(lab, wa, n)
        rms = np.sqrt(np.bincount(lab, wa * d * d, n) / np.maximum(per_arc, 1e-300))
        if live > 2:
            alive &= rms <= 3.0 * max(median(rms[alive]), 0.5)
            live = int(np.count_nonzero(alive))
        dd = d * d
        wt = (wa if live == n else wa * alive[lab]) / (1.0 + dd)
        tot = np.bincount(lab_r, wt, m)
        jx, jy = -_centred(ux, wt, lab_r, m, tot), -_centred(uy, wt, lab_r, m, tot)
        wx, wy = wt * jx, wt * jy
        sxx, sxy, syy = float(wx @ jx), float(wx @ jy), float(wy @ jy)
        x, y, det = solve2(sxx, sxy, syy, float(wx @ d), float(wy @ d))
        if not math.isfinite(det) or det <= 1e-12 * max((sxx + syy) ** 2, 1e-300):
            return math.nan, math.nan, math.inf, alive
        cx, cy = cx - x, cy - y
        rings = live if own else np.unique(ring[alive]).size
        dof = max(int(np.count_nonzero(wt)) - 2 - rings, 1)
        sigma = math.sqrt((sxx + syy) / det * float(wt @ dd) / dof)  # trace of A^-1 ...
        if math.hypot(x, y) < 1e-4:
            break
    return cx, cy, sigma, alive


def arc_spread(rd: Ridges, c: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(radius, spread), each (J,): each arc's weighted mean distance to centre c (level
    px) and the weighted rms of its distances about that mean (0 for a circle about c)."""
    d = hypot(rd.x - c[0], rd.y - c[1])
    tot = np.maximum(np.bincount(rd.label, rd.w, rd.count), 1e-300)
    radius = np.bincount(rd.label, rd.w * d, rd.count) / tot
    spread = np.sqrt(np.bincount(rd.label, rd.w * (d - radius[rd.label]) ** 2, rd.count) / tot)
    return radius, spread


def _rings_of(rd: Ridges, c: tuple[float, float], alive: np.ndarray) -> np.ndarray:
    """(J,) int: the ring of each arc about centre c (level px): the live arcs that are
    circles about c (rms of their distances to c about their mean at most TIE_RMS) sorted
    by that mean radius, a new ring wherever the radius exceeds the ring's first by over
    TIE_RADIUS; the other arcs each a ring of their own."""
    radius, spread = arc_spread(rd, c)
    round_ = alive & (spread <= TIE_RMS)
    ring = np.empty(rd.count, np.int64)
    k, first = -1, -math.inf
    for j in np.argsort(radius):
        if not round_[j] or radius[j] - first > TIE_RADIUS:
            k += 1
            first = radius[j] if round_[j] else -math.inf
        ring[j] = k
    return ring


def _tie_rings(
    rd: Ridges, fit: tuple[float, float, float, np.ndarray], iters: int
) -> tuple[float, float, float, int]:
    """The circle fit ``fit`` (x, y, sigma, alive: :func:`circles` with a radius per arc)
    fitted again with one radius per ring (:func:`_rings_of`), the rings regrouped about
    each new centre (TIE_ROUNDS times at most): (x, y, sigma, arcs used), sigma and the
    arcs those of ``fit``.

    A ring cut by detector gaps, a stop's arm or the frame's edge into arcs is one circle:
    with a radius each, arcs fix the centre only across themselves (their curvature
    barely), so short arcs of one ring on opposite sides left it 1-3 px off. The standard
    error stays the free fit's: it says how well the arcs fix the centre without assuming
    which of them are one ring (a tilted detector's ellipses break that: their pieces
    share no radius about the circles' centre), and the rules that trust ring fits by it
    (tight fits, :func:`_choose_by_rules`) were set on it.
    """
    x, y, sigma, alive = fit
    for _ in range(TIE_ROUNDS):
        ring = _rings_of(rd, (x, y), alive)
        if np.unique(ring[alive]).size == int(alive.sum()):
            break  # no two live arcs share a ring
        x2, y2, _, _ = circles(rd, (x, y), ring, alive, iters)
        if not math.isfinite(x2):
            break
        moved = math.hypot(x2 - x, y2 - y)
        x, y = x2, y2
        if moved < 1e-3:
            break
    return x, y, sigma, int(alive.sum())


def _arc_circle(
    x: np.ndarray, y: np.ndarray, w: np.ndarray
) -> tuple[float, float, float, float, float]:
    """One arc's own circle: (cx, cy, R, rms, span), level px and radians.

    Weighted algebraic fit (Kasa) of |p - c|^2 = R^2, linear in (c, R^2 - |c|^2) once the
    arc's weighted mean is removed; rms of the radial residuals |p - c| - R; span the arc's
    angular extent about c (2 pi less the largest gap between the points' angles).
    """
    mx, my = float(np.average(x, weights=w)), float(np.average(y, weights=w))
    u, v = x - mx, y - my
    sw = np.sqrt(w)
    a = np.stack([u, v, np.ones_like(u)], axis=1) * sw[:, None]
    sol = np.linalg.lstsq(a, (u * u + v * v) * sw, rcond=None)[0]
    cx, cy = 0.5 * sol[0], 0.5 * sol[1]
    r2 = sol[2] + cx * cx + cy * cy
    if not r2 > 0:
        return math.nan, math.nan, math.nan, math.inf, 0.0
    radius = math.sqrt(r2)
    res = np.hypot(u - cx, v - cy) - radius
    rms = float(np.sqrt(np.average(res * res, weights=w)))
    ang = np.sort(np.arctan2(v - cy, u - cx))
    gaps = np.diff(np.concatenate([ang, ang[:1] + 2 * math.pi]))
    return cx + mx, cy + my, radius, rms, float(2 * math.pi - gaps.max())


def arc_consensus(
    rd: Ridges,
    max_radius: float,
    seeds: int = 8,
    tol: float = 1.0,
    min_span: float = 0.3,
    most: int = 2,
) -> list[tuple[float, float, float, int]]:
    """Centres that many arcs share, found from single arcs (RANSAC over arcs): (x, y,
    sigma, arcs) in level px, the best-supported first, at most ``most``.

    The common fit through all arcs (:func:`fit_arcs`) is pulled off by arcs that are not
    rings about the beam (beamstop edges, the horizon, streaks, n-fold arcs). Here each of
    the ``seeds`` strongest arcs that is itself a clean circle (rms <= 0.5 px, spanning >=
    ``min_span`` rad, radius <= ``max_radius``) proposes its centre c; the arcs concentric
    about c (rms of |p - c| less their mean radius <= ``tol``) are fitted with a common
    centre from c, twice; support = the ridge strength of those arcs.
    """
    if rd.count < 1:
        return []
    strength = np.bincount(rd.label, rd.w, rd.count)
    hyps: list[tuple[float, tuple[float, float, float, int]]] = []
    for j in np.argsort(-strength)[:seeds]:
        on = rd.label == j
        if np.count_nonzero(on) < 12:
            continue
        cx, cy, radius, rms, span = _arc_circle(rd.x[on], rd.y[on], rd.w[on])
        if not (rms <= 0.5 and span >= min_span and radius <= max_radius):
            continue
        if any(math.hypot(cx - h[1][0], cy - h[1][1]) <= 2 * tol for h in hyps):
            continue
        fit, support = (cx, cy, math.inf, 1), 0.0
        for last in (False, True):
            d = hypot(rd.x - fit[0], rd.y - fit[1])
            mean = np.bincount(rd.label, rd.w * d, rd.count) / strength
            r = d - mean[rd.label]
            rms_k = np.sqrt(np.bincount(rd.label, rd.w * r * r, rd.count) / strength)
            inl = rms_k <= tol
            if not inl.any():
                break
            x, y, s, n = fit_arcs(rd.only(inl), fit[:2], tie=last)
            if not math.isfinite(x):
                break
            fit, support = (x, y, s, n), float(strength[inl].sum())
        if support > 0:
            hyps.append((support, fit))
    hyps.sort(key=lambda h: -h[0])
    out: list[tuple[float, float, float, int]] = []
    for _, fit in hyps:
        if all(math.hypot(fit[0] - o[0], fit[1] - o[1]) > 2 * tol for o in out):
            out.append(fit)
    return out[:most]
