"""The beam centre from the round end of a beamstop's shadow."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from scattertag.beam.boxes import nonzero2d
from scattertag.beam.edges import MAX_SIGMA, MIN_POINTS, edge_crests, edge_window, robust
from scattertag.beam.order_stats import percentile
from scattertag.beam.shadow import MAX_RADIUS, Shadows

#: The edge points of a kept fit cover at least this fraction of the circle, in SPAN_SECTORS
#: sectors (fewer on a circle under SPAN_SECTORS level px long, but at least MIN_SECTORS:
#: the circumference of the least radius traced, 2.5 level px).
MIN_SPAN, SPAN_SECTORS, MIN_SECTORS = 0.45, 36, 16
#: A round edge's normals turn with it: about the fitted centre, the edge normals' direction
#: changes with the polar angle at least this fast (:func:`_turn`: 1 along a circle, 0
#: along a straight edge). Of the loose circles of seeds 0 and 1 (650 frames), 235 of the
#: 600 farther than 2 px from the beam turn under 0.2 (a wedge's sides where it leaves the
#: frame, a bar's sides), 138 of the 139 within 2 px turn at 0.4-1.
MIN_TURN = 0.3
#: Stretches of a traced edge: its points sorted by polar angle, split where that jumps by
#: more than this (radians).
TURN_GAP = math.pi / 6
#: Least distance (blocks) from a shadow's widest point to the light.
MIN_WIDTH = 1.5
#: Most shadows tried.
MAX_SHADOWS = 5
#: A shadow is darker than the light about it (:func:`shadow_contrast`) by at least this
#: many standard errors of its inside's median: a stop's shadow is at the dark level
#: (t 10-10^5 on the found circles of seeds 0, 1, 3, 4, 5); a dark patch that is no shadow
#: (a falloff's dark corner, a pattern's dark middle) is no darker than its surroundings.
SHADOW_T = 5.0
#: :func:`shadow_contrast` reads the inside within INNER radii, the light in SECTORS sectors
#: of the annulus from OUTER radii, max(3 px, WIDTH radii) wide, at their LIGHT percentile
#: (a stop's arm or a wedge's sides darken some sectors).
INNER, OUTER, WIDTH, SECTORS, LIGHT = 0.6, 1.3, 0.7, 16, 75.0
#: A circle of radius R is read every R / SHADOW_STEP px (rows and columns, at least 1).
SHADOW_STEP = 16.0


@dataclass(frozen=True)
class ShadowCircle:
    """A circle fitted to a beamstop shadow's round edge, in frame pixels.

    x, y: centre (x along columns, y along rows); radius; rms: rms radial residual;
    sigma: standard error of the centre; span: fraction of the circle covered by the
    edge points; points: how many edge points were kept.
    """

    x: float
    y: float
    radius: float
    rms: float
    sigma: float
    span: float
    points: int


def shadow_circles(
    counts: np.ndarray,
    ok: np.ndarray,
    shadows: Shadows,
    min_span: float = MIN_SPAN,
    max_sigma: float = MAX_SIGMA,
    horizon: float | None = None,
) -> list[ShadowCircle]:
    """Circles fitted to the round edges of beamstop shadows (the most precise first).

    counts, ok: the frame (rows, cols) and its valid pixels; shadows: :func:`find_shadows`
    on a level of the frame. A circle is kept if its edge points cover ``min_span`` of it
    and its centre's standard error is at most ``max_sigma`` pixels. Given a film's
    ``horizon`` (frame row), the edge is traced on either side of it on its own scale
    (:func:`edge_window`).
    """
    b, lab, n = shadows.b, shadows.label, shadows.count
    if n == 0:
        return []
    largest = MAX_RADIUS * max(counts.shape) / b
    dist = _distance_to_bright(shadows, largest)
    peak = np.zeros(n + 1)  # each shadow's largest distance (ndimage.maximum, ~10x faster)
    np.maximum.at(peak, lab.ravel(), dist.ravel())
    peak = peak[1:]
    peak[(peak < MIN_WIDTH) | (peak > largest)] = 0.0
    live = np.flatnonzero(peak > 0)
    order = live[np.argsort(peak[live])[::-1][:MAX_SHADOWS]]
    out: list[ShadowCircle] = []
    for k in order:
        r0 = float(peak[k])
        for cy, cx in _ridge_points(dist, lab == k + 1, r0):
            start = (b * cx + (b - 1) / 2, b * cy + (b - 1) / 2)
            fit = _fit_edge(counts, ok, start, r0 * b, b, min_span, max_sigma, horizon)
            if fit is not None:
                out.append(fit)
    out.sort(key=lambda c: c.sigma)
    kept: list[ShadowCircle] = []
    for c in out:  # one circle per place
        if all(math.hypot(c.x - d.x, c.y - d.y) > max(2.0, 0.5 * d.radius) for d in kept):
            kept.append(c)
    return kept


def circle_from(
    counts: np.ndarray,
    ok: np.ndarray,
    start: tuple[float, float],
    radius: float,
    b_max: int,
    horizon: float | None = None,
) -> ShadowCircle | None:
    """The circle (:func:`_fit_edge`, the strict gates) through a stop's edge about a start
    (frame x, y; radius about ``radius`` px; traced at blocks of at most ``b_max``) that
    no shadow gave (``horizon``: a film's, as :func:`edge_window` takes it)."""
    return _fit_edge(counts, ok, start, radius, b_max, horizon=horizon)


def _distance_to_bright(shadows: Shadows, reach: float) -> np.ndarray:
    """(R, C) Euclidean distance (blocks) from each block to the nearest bright block, taken
    over the shadows' bounding box and ``reach`` blocks about it only (0 beyond): exact on
    the shadows' blocks where at most ``reach`` (the nearest bright block then lies in the
    box), never less than the true distance; the whole level's when the box has no bright
    block."""
    lab = shadows.label
    rows, cols = np.flatnonzero(lab.any(axis=1)), np.flatnonzero(lab.any(axis=0))
    m = math.ceil(reach) + 1
    box = (
        slice(max(int(rows[0]) - m, 0), int(rows[-1]) + m + 1),
        slice(max(int(cols[0]) - m, 0), int(cols[-1]) + m + 1),
    )
    if not shadows.bright[box].any():
        return ndimage.distance_transform_edt(~shadows.bright)
    dist = np.zeros(shadows.bright.shape)
    dist[box] = ndimage.distance_transform_edt(~shadows.bright[box])
    return dist


def _ridge_points(dist: np.ndarray, comp: np.ndarray, r0: float) -> list[tuple[float, float]]:
    """(row, col) provisional centres of a shadow: the widest point and, when the widest
    part is long (a bar), its two ends."""
    iy, ix = nonzero2d(comp & (dist >= 0.6 * r0))
    i = int(np.argmax(dist[iy, ix]))
    pts = [(float(iy[i]), float(ix[i]))]
    if iy.size >= 3:
        y, x = iy - iy.mean(), ix - ix.mean()
        cov = np.cov(np.stack([x, y]))
        v = np.linalg.eigh(cov)[1][:, 1]  # the long axis
        along = x * v[0] + y * v[1]
        if along.max() - along.min() > 3.0 * r0:
            ends = (int(np.argmin(along)), int(np.argmax(along)))
            pts.extend((float(iy[j]), float(ix[j])) for j in ends)
    return pts


def _fit_edge(
    counts: np.ndarray,
    ok: np.ndarray,
    start: tuple[float, float],
    r0: float,
    b_max: int,
    min_span: float = MIN_SPAN,
    max_sigma: float = MAX_SIGMA,
    horizon: float | None = None,
) -> ShadowCircle | None:
    """The circle through the shadow edge around ``start`` (frame x, y; radius about r0),
    if its points cover ``min_span`` of it and its centre's standard error is at most
    ``max_sigma`` frame pixels (``horizon``: a film's, as :func:`edge_window` takes it)."""
    win = edge_window(counts, ok, start, 1.5 * r0 + 3.0 * b_max, b_max, horizon=horizon)
    if win is None:
        return None
    b, mag = win.b, win.mag
    if r0 / b < 2.5:
        return None
    px, py = win.level(*start)  # level coordinates of the provisional centre
    iy, ix = nonzero2d(win.inner & (mag > 0))
    dx, dy = ix - px, iy - py
    r = np.hypot(dx, dy)
    rr = r0 / b
    near = (r > 0.4 * rr) & (r < 1.3 * rr + 2.0)
    iy, ix, dx, dy, r = iy[near], ix[near], dx[near], dy[near], r[near]
    if iy.size < MIN_POINTS:
        return None
    g = mag[iy, ix]
    nx, ny = win.gx[iy, ix] / g, win.gy[iy, ix] / g
    outward = (nx * dx + ny * dy) > 0.7 * r  # brighter away from the centre
    strong = g >= 0.3 * percentile(g[outward], 95) if outward.any() else outward
    sel = outward & strong
    iy, ix, nx, ny = iy[sel], ix[sel], nx[sel], ny[sel]
    if iy.size < MIN_POINTS:
        return None
    ex, ey, w, k = edge_crests(win, iy, ix, nx, ny)
    if ex.size < MIN_POINTS:
        return None
    nx, ny = nx[k], ny[k]
    # the shadow's edge is the innermost edge brightening outward along each ray
    rad = np.hypot(ex - px, ey - py)
    bins = max(36, int(2 * math.pi * rr))
    sector = ((np.arctan2(ey - py, ex - px) + math.pi) / (2 * math.pi) * bins).astype(np.int64)
    sector %= bins
    first = np.full(bins, np.inf)
    np.minimum.at(first, sector, rad)
    inner = rad <= first[sector] + 1.5
    ex, ey, w, nx, ny = ex[inner], ey[inner], w[inner], nx[inner], ny[inner]
    fit = _circle(ex, ey, w, (px, py))
    if fit is None:
        return None
    cx, cy, radius, rms, sigma, keep = fit
    n = int(np.clip(2 * math.pi * radius, MIN_SECTORS, SPAN_SECTORS))  # a level px each
    ang = np.arctan2(ey[keep] - cy, ex[keep] - cx)
    span = _cover(ang, n)
    if (
        keep.sum() < MIN_POINTS
        or span < min_span
        or _turn(ang, np.arctan2(ny[keep], nx[keep])) < MIN_TURN
        or sigma * b > max_sigma
        or not 0.5 * rr <= radius <= 1.6 * rr + 1.0
    ):
        return None
    fx, fy = win.frame(cx, cy)
    return ShadowCircle(fx, fy, radius * b, rms * b, sigma * b, float(span), int(keep.sum()))


def _turn(theta: np.ndarray, normal: np.ndarray) -> float:
    """How fast an edge's normals turn with the polar angle about a fitted centre: 1 plus the
    least-squares slope of wrap(normal - theta) against theta (radians, (N,) each) within
    each stretch of the edge (sorted polar angles, cut at the widest gap of the turn and
    where they jump by over TURN_GAP). 1 along a circle, 0 along straight edges (a wedge's
    two sides fit a circle through both whose normals do not turn); 1 when no stretch holds
    two points."""
    psi = np.angle(np.exp(1j * (normal - theta)))
    order = np.argsort(theta)
    t, psi = theta[order], psi[order]
    start = (int(np.argmax(np.diff(np.append(t, t[0] + 2 * math.pi)))) + 1) % t.size
    t, psi = np.roll(t, -start), np.roll(psi, -start)
    t = (t - t[0]) % (2 * math.pi)
    stretch = np.concatenate([[0], np.cumsum(np.diff(t) > TURN_GAP)])
    n = np.bincount(stretch)
    tc = t - (np.bincount(stretch, t) / n)[stretch]
    pc = psi - (np.bincount(stretch, psi) / n)[stretch]
    den = float(tc @ tc)
    return 1.0 + float(tc @ pc) / den if den > 0 else 1.0


def _cover(angle: np.ndarray, n: int) -> float:
    """The fraction of n equal sectors of the full turn that angles (radians) fall in."""
    return np.unique(((angle + math.pi) / (2 * math.pi) * n).astype(np.int64) % n).size / n


def _circle(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, start: tuple[float, float], iters: int = 10
) -> tuple[float, float, float, float, float, np.ndarray] | None:
    """Robust circle through points (x, y) with weights w: (cx, cy, R, rms, sigma of the
    centre, inlier mask). Gauss-Newton on d_i = |p_i - c| - R from ``start``
    (:func:`robust`)."""
    radius = float(np.hypot(x - start[0], y - start[1]) @ w / w.sum())

    def model(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = x - p[0], y - p[1]
        r = np.maximum(np.hypot(dx, dy), 1e-9)
        return r - p[2], np.stack([-dx / r, -dy / r, -np.ones_like(r)])

    fit = robust(model, np.array([start[0], start[1], radius]), w, iters)
    if fit is None:
        return None
    p, rms, cov, keep = fit
    sigma = math.sqrt(max(cov[0, 0] + cov[1, 1], 0.0))
    return float(p[0]), float(p[1]), float(p[2]), rms, sigma, keep


def shadow_contrast(counts: np.ndarray, ok: np.ndarray, x: float, y: float, radius: float) -> float:
    """How much darker a circle's inside is than the light about it, in standard errors.

    (L - m) / (1.2533 s / sqrt(n)): m the median of the n valid pixels within INNER
    ``radius`` of frame (x, y), s their robust spread (1.4826 median absolute deviation,
    at least 1 count), 1.2533 s / sqrt(n) the median's standard error; L the LIGHT
    percentile of the medians of SECTORS sectors of the annulus from OUTER radii, max(3,
    WIDTH radii) wide. Every STRIDE-th row and column of a large circle (STRIDE = radius /
    SHADOW_STEP px, at least 1): a few hundred pixels inside. inf where under 3 pixels are
    inside or no sector has 2."""
    rows, cols = counts.shape
    width = max(3.0, WIDTH * radius)
    reach = OUTER * radius + width + 1.0
    step = max(int(radius / SHADOW_STEP), 1)
    yy = np.arange(max(int(y - reach), 0), min(int(y + reach) + 2, rows), step)
    xx = np.arange(max(int(x - reach), 0), min(int(x + reach) + 2, cols), step)
    if yy.size == 0 or xx.size == 0:
        return math.inf
    win = counts[yy[0] : yy[-1] + 1 : step, xx[0] : xx[-1] + 1 : step]
    use = ok[yy[0] : yy[-1] + 1 : step, xx[0] : xx[-1] + 1 : step]
    dy, dx = np.broadcast_arrays((yy - y)[:, None], (xx - x)[None, :])
    r = np.hypot(dx, dy)
    inside = win[use & (r < INNER * radius)].astype(np.float64)
    outer = use & (r > OUTER * radius) & (r < OUTER * radius + width)
    sector = (np.arctan2(dy[outer], dx[outer]) + math.pi) * (SECTORS / (2 * math.pi))
    sector = sector.astype(np.int64) % SECTORS
    medians = _group_medians(win[outer].astype(np.float64), sector, SECTORS)
    if inside.size < 3 or medians.size == 0:
        return math.inf
    m = float(np.median(inside))
    s = max(1.4826 * float(np.median(np.abs(inside - m))), 1.0)
    return (float(np.percentile(medians, LIGHT)) - m) / (1.2533 * s / math.sqrt(inside.size))


def _group_medians(values: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """The medians of ``values`` in each of groups 0..n-1 (``group``, same shape) with at
    least 2 values, in group order (one sort: np.median per group costs more)."""
    order = np.lexsort((values, group))
    v = values[order]
    size = np.bincount(group, minlength=n)
    start = np.concatenate(([0], np.cumsum(size)[:-1]))
    keep = size >= 2
    lo = start[keep] + (size[keep] - 1) // 2
    hi = start[keep] + size[keep] // 2
    return 0.5 * (v[lo] + v[hi])
