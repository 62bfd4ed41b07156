"""A stop's edge traced on the counts about a point, and the robust fits through it.

About a provisional point, the counts are block-summed at the finest block size whose bright
side holds EDGE_COUNTS a block, smoothed over one block, and differentiated
(:func:`edge_window`); edge crests are the blocks where the gradient magnitude peaks along
its own direction, moved to a parabola's peak (:func:`edge_crests`), kept where it points
the way a shape's outline says the light lies (:func:`outward_crests`). The shapes
(:mod:`scattertag.beam.disks`, :mod:`scattertag.beam.bars`) are fitted through the crests
by weighted Gauss-Newton with outliers beyond 3 robust standard deviations dropped
(:func:`robust`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from scattertag.beam.boxes import box_all
from scattertag.beam.gaussian import gaussian
from scattertag.beam.grid import block_sums
from scattertag.beam.order_stats import median, percentile
from scattertag.beam.pyramid import central_differences

#: Largest standard error (frame pixels) of a kept fit's centre.
MAX_SIGMA = 0.25
#: Least edge points of a kept fit.
MIN_POINTS = 12
#: Counts per block wanted where the edge is traced (the block size doubles until reached).
EDGE_COUNTS = 16.0
#: Most blocks along a side of the window traced around a provisional centre.
MAX_WINDOW = 200
#: Given a film's horizon (:func:`edge_window`), no crest is taken within FILM_BAND blocks
#: (and half a pixel) of it: the film's own step is no stop's edge.
FILM_BAND = 1.5


@dataclass(frozen=True)
class EdgeWindow:
    """Edge evidence about a point, on a level of b x b frame-pixel blocks of a window
    whose first pixel is frame (x0, y0): the smoothed counts' gradient (gx, gy) and its
    magnitude mag, (R, C); ``inner`` the blocks whose gradient rests on valid blocks."""

    b: int
    x0: int
    y0: int
    gx: np.ndarray
    gy: np.ndarray
    mag: np.ndarray
    inner: np.ndarray

    def level(self, x: float, y: float) -> tuple[float, float]:
        """Level coordinates of frame point (x, y)."""
        return (x - self.x0 - (self.b - 1) / 2) / self.b, (y - self.y0 - (self.b - 1) / 2) / self.b

    def frame(self, x: float, y: float) -> tuple[float, float]:
        """Frame coordinates of level point (x, y)."""
        return self.x0 + self.b * x + (self.b - 1) / 2, self.y0 + self.b * y + (self.b - 1) / 2


def edge_window(
    counts: np.ndarray,
    ok: np.ndarray,
    start: tuple[float, float],
    half: float,
    b_max: int,
    b_min: int = 1,
    horizon: float | None = None,
) -> EdgeWindow | None:
    """The gradient of the counts smoothed over 1 block, in the window of +-``half`` frame
    px about ``start`` (x, y), at the finest block size (at least ``b_min``, at most
    ``b_max``) whose bright side holds EDGE_COUNTS a block and whose window is at most
    MAX_WINDOW blocks a side; None if the window holds under 64 valid pixels. Given a
    film's ``horizon`` (frame row), the counts on either side of it are read on their own
    scale (:func:`_film_sides`) and the blocks next to it are not inner."""
    rows, cols = counts.shape
    x0, x1 = max(0, int(start[0] - half)), min(cols, int(start[0] + half) + 1)
    y0, y1 = max(0, int(start[1] - half)), min(rows, int(start[1] + half) + 1)
    c, m = counts[y0:y1, x0:x1], ok[y0:y1, x0:x1]
    if m.sum() < 64:
        return None
    c = np.where(m, c, 0).astype(np.float64)
    level = percentile(c[m], 90)  # the bright side of the window, counts / px
    b = b_min
    while b < b_max and (level * b * b < EDGE_COUNTS or max(c.shape) / b > MAX_WINDOW):
        b *= 2
    s, n = block_sums(c, b), block_sums(m, b)
    use = n >= 0.5 * b * b
    if horizon is not None:
        use &= block_sums(_clipped(c, m, counts), b) == 0
    mean = np.where(use, s / np.maximum(n, 1.0), 0.0)
    inner = box_all(use, 2)
    if horizon is not None:
        dy = y0 + b * np.arange(mean.shape[0]) + 0.5 * (b - 1) - horizon  # block rows, px
        mean = _film_sides(mean, use, dy > 0)
        inner &= (np.abs(dy) > FILM_BAND * b + 0.5)[:, None]
    wgt = use.astype(np.float64)
    num = gaussian(mean * wgt, 1.0, mode="nearest")
    den = gaussian(wgt, 1.0, mode="nearest")
    a = np.where(den > 0.2, num / np.maximum(den, 1e-9), 0.0)
    gy, gx = central_differences(a)  # np.gradient's floats
    return EdgeWindow(b, x0, y0, gx, gy, np.hypot(gy, gx), inner)


def _clipped(c: np.ndarray, m: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(h, w) bool: the window's valid pixels ``m`` whose counts ``c`` reach the frame's
    largest count (``counts``'), where at least 4 pixels reach it (the count limit; none
    else). A clipped edge's gradient peaks where the counts reach the limit, inside the
    stop's true edge: a circle through it is pulled off the beam (seed 3's 270: 2 px)."""
    top = c[m].max()
    clip = m & (c == top)
    if np.count_nonzero(clip) < 4 or top < counts.max():
        clip[:] = False
    return clip


def _film_sides(mean: np.ndarray, use: np.ndarray, below: np.ndarray) -> np.ndarray:
    """(R, C) block means ``mean`` (valid where ``use``) less the window's floor (their 1st
    percentile: a stop's shadow, an integrating detector's offset), the rows ``below`` (R,)
    a film's horizon and those above it each divided by their own light (the 90th
    percentile of their valid blocks, where positive).

    In grazing incidence the film hides the sample's scattering below its horizon, so a
    stop over the direct beam (which lies on or below the horizon) borders the pattern
    above it and only the background below it, orders of magnitude dimmer: read on one
    scale, the lower part of its edge falls under any threshold the upper part sets."""
    out = np.maximum(mean - (percentile(mean[use], 1) if use.any() else 0.0), 0.0)
    for side in (below, ~below):
        lit = use & side[:, None]
        light = percentile(out[lit], 90) if lit.any() else 0.0
        if light > 0:
            out[side] /= light
    return out


def outward_crests(
    win: EdgeWindow, iy: np.ndarray, ix: np.ndarray, mx: np.ndarray, my: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(x, y, w) level coordinates and gradient magnitude of the edge crests (:func:`edge_crests`)
    among the blocks (iy, ix) whose gradient points along the outward unit normals (mx, my)
    (cosine above 0.7) and is strong (at least 0.3 of the 95th percentile of those), or None
    when fewer than MIN_POINTS are left."""
    g = win.mag[iy, ix]
    nx, ny = win.gx[iy, ix] / g, win.gy[iy, ix] / g
    outward = nx * mx + ny * my > 0.7
    strong = g >= 0.3 * percentile(g[outward], 95) if outward.any() else outward
    sel = outward & strong
    if sel.sum() < MIN_POINTS:
        return None
    ex, ey, w, _ = edge_crests(win, iy[sel], ix[sel], nx[sel], ny[sel])
    if ex.size < MIN_POINTS:
        return None
    return ex, ey, w


def edge_crests(
    win: EdgeWindow, iy: np.ndarray, ix: np.ndarray, nx: np.ndarray, ny: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, w, k) level coordinates and gradient magnitude of the blocks (iy, ix) where the
    gradient magnitude peaks along the unit normals (nx, ny), moved to the peak of a
    parabola through the three samples (at most half a block), and k the indices of those
    blocks in (iy, ix)."""
    mag = win.mag
    g = mag[iy, ix]
    lo = ndimage.map_coordinates(mag, [iy - ny, ix - nx], order=1)
    hi = ndimage.map_coordinates(mag, [iy + ny, ix + nx], order=1)
    crest = (g >= lo) & (g >= hi)
    den2 = lo - 2 * g + hi
    t = np.where(
        crest & (den2 < 0), np.clip(0.5 * (lo - hi) / np.where(den2 < 0, den2, -1), -0.5, 0.5), 0
    )
    return (ix + t * nx)[crest], (iy + t * ny)[crest], g[crest], np.flatnonzero(crest)


def det_inv(h: np.ndarray) -> tuple[float, np.ndarray]:
    """(det, inverse) of a small square matrix h: by cofactors for 3 x 3 (the circle fits'
    many Gauss-Newton steps, without LAPACK's per-call overhead), else numpy's (the
    inverse is only read where det > 0)."""
    if h.shape != (3, 3):
        det = float(np.linalg.det(h))
        return det, np.linalg.inv(h) if det else np.full(h.shape, np.nan)
    (a, b, c), (d, e, f), (g, k, m) = h.tolist()
    adj = np.array(
        [
            [e * m - f * k, c * k - b * m, b * f - c * e],
            [f * g - d * m, a * m - c * g, c * d - a * f],
            [d * k - e * g, b * g - a * k, a * e - b * d],
        ]
    )
    det = a * adj[0, 0] + b * adj[1, 0] + c * adj[2, 0]
    return det, adj / det if det else np.full((3, 3), np.nan)


def robust(
    model: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    p0: np.ndarray,
    w: np.ndarray,
    iters: int = 10,
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray] | None:
    """Weighted Gauss-Newton on residuals d(p) (``model``: d (N,) and its Jacobian (P, N))
    from p0, whose first two parameters are a centre: (p, rms, covariance of p, inlier
    mask). Points beyond 3 robust standard deviations (at least 1 unit) from the residuals'
    median are dropped each step (not from 0: while a second edge pulls a radius, most
    residuals share an offset); it stops when the centre moves under 1e-3."""
    p = p0.astype(np.float64)
    keep = np.ones(w.size, bool)
    rms, cov = math.inf, np.full((p.size, p.size), math.inf)
    for _ in range(iters):
        d, jac = model(p)
        dk = d[keep]
        if dk.size < MIN_POINTS:
            return None
        mid = median(dk)
        s = 1.4826 * median(np.abs(dk - mid))
        keep = np.abs(d - mid) <= max(3.0 * s, 1.0)
        if keep.sum() < MIN_POINTS:
            return None
        jk, wk = jac[:, keep], w[keep]
        h = (jk * wk) @ jk.T
        det, inv = det_inv(h)
        if det <= 1e-12 * max(np.trace(h) ** p.size, 1e-300):
            return None
        step = -inv @ ((jk * wk) @ d[keep])
        p = p + step
        dk = d[keep]
        rms = float(np.sqrt((dk * dk) @ wk / wk.sum()))
        dof = max(int(keep.sum()) - p.size, 1)
        cov = inv * (float(np.sum(wk * dk * dk)) / dof)
        if math.hypot(step[0], step[1]) < 1e-3:
            break
    return p, rms, cov, keep
