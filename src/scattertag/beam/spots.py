"""The beam centre from a spotty ring: one circle through compact bright spots.

A ring of a few large grains (the simulator's "large grains": 6-56 grains about the whole
ring, each 0.3-1.5 degrees wide) or an anisotropic ring's lobes shows as separate spots at
one radius about the beam; the ridge finder traces them, if at all, as short pieces that
no arc fit ties together. Here the spots are the connected pixels of the ring level whose
excess e = g - (the mean of g over the lit pixels of a box BACKGROUND level px across) is
SPOT_Z robust standard deviations over its median (at least SPOT_PIXELS of them), each placed at its
centroid weighted by e. Every three of the SPOT_MOST strongest spots fix a circle; the one
through most spots within SPOT_TOL level px (ties: the smaller rms) is refitted to those
by least squares (the distances' residuals, Gauss-Newton) with its standard error.

A continuous ridge that the threshold cuts into pieces also lies on a circle (a broad
ring's crest, a halo's speckle band): spots of a ring are separated by dark gaps, so
:func:`_bright` asks how much of the circle in the frame is bright (e over SPOT_LIT robust
standard deviations).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import ndimage

from scattertag.beam.pyramid import Level

#: The background's box (level px, odd) and the spots' least height over it, in
#: robust standard deviations of the excess (1.4826 MAD), and their least size (pixels).
BACKGROUND, SPOT_Z, SPOT_PIXELS = 11, 6.0, 2
#: At most SPOT_MOST spots (the largest summed excess) are tried, and none where more
#: than SPOT_CROWD pass (noise or texture everywhere, not spots of a ring).
SPOT_MOST, SPOT_CROWD = 30, 60
#: A spot lies on a circle within SPOT_TOL level px; the fit's residual floor (a spot's
#: centroid scatter, level px).
SPOT_TOL, SPOT_FLOOR = 1.0, 0.3
#: A circle larger than SPOT_REACH level diagonals is no ring beside the frame (nearly
#: collinear spots).
SPOT_REACH = 2.0
#: A pixel of the circle is bright where its excess is SPOT_LIT robust deviations over the
#: median (:func:`_bright`).
SPOT_LIT = 3.0


#: (e, inner, median, robust deviation) of the ring level's excess (:func:`_excess`).
Excess = tuple[np.ndarray, np.ndarray, float, float]


@dataclass(frozen=True)
class SpotCircle:
    """A circle through spots of the ring level: centre and radius (level px), standard
    error of the centre (level px), the spots on it and those found."""

    x: float
    y: float
    radius: float
    sigma: float
    count: int
    spots: int
    bright: float  # the share of the circle that is bright (:func:`_bright`)


def _excess(level: Level) -> Excess:
    """(e, inner, median, robust deviation): g over its lit pixels' box mean (BACKGROUND) on
    the level's interior (5 x 5 boxes lit; 0 elsewhere), and e's statistics."""
    lit = level.lit
    w = ndimage.uniform_filter(lit.astype(float), BACKGROUND, mode="constant")
    s = ndimage.uniform_filter(np.where(lit, level.g, 0.0), BACKGROUND, mode="constant")
    back = np.where(w > 0.05, s / np.maximum(w, 1e-12), 0.0)
    inner = level.interior(2)
    e = np.where(inner, level.g - back, 0.0)
    d = e[inner]
    if d.size < 100:
        return e, inner, 0.0, math.inf
    d = d[:: max(1, d.size // 8192)]  # the statistics from <= ~16k samples
    med = float(np.median(d))
    return e, inner, med, 1.4826 * float(np.median(np.abs(d - med))) + 1e-12


def find_spots(ex: Excess) -> np.ndarray:
    """(N, 2) spot centroids (x, y, level px) of an excess (:func:`_excess`), strongest
    first, at most SPOT_MOST; empty where none or more than SPOT_CROWD pass."""
    e, inner, med, dev = ex
    hot = inner & (e > med + SPOT_Z * dev)
    lab, n = ndimage.label(hot)
    if n == 0:
        return np.empty((0, 2))
    flat = lab.ravel()
    w = np.where(hot, e, 0.0).ravel()
    rows, cols = np.divmod(np.arange(flat.size), e.shape[1])
    size = np.bincount(flat, minlength=n + 1)[1:]
    mass = np.bincount(flat, w, n + 1)[1:]
    cy = np.bincount(flat, w * rows, n + 1)[1:] / np.maximum(mass, 1e-12)
    cx = np.bincount(flat, w * cols, n + 1)[1:] / np.maximum(mass, 1e-12)
    keep = size >= SPOT_PIXELS
    if np.count_nonzero(keep) > SPOT_CROWD:
        return np.empty((0, 2))
    order = np.argsort(-mass[keep], kind="stable")[:SPOT_MOST]
    return np.column_stack([cx[keep], cy[keep]])[order]


@cache
def _combinations(n: int) -> np.ndarray:
    """(n choose 3, 3) indices of every three of n points."""
    return np.array(list(itertools.combinations(range(n), 3)), dtype=np.intp).reshape(-1, 3)


def _triples(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Circles through every three points of ``p`` ((N, 2)): centres (T, 2) and radii
    (T,); collinear triples left out."""
    t = _combinations(len(p))
    a, b, c = p[t[:, 0]], p[t[:, 1]], p[t[:, 2]]
    # the perpendicular bisectors of ab and ac meet at the centre: a 2x2 solve per triple
    m = 2.0 * np.stack([b - a, c - a], axis=1)
    rhs = np.stack([(b**2).sum(1) - (a**2).sum(1), (c**2).sum(1) - (a**2).sum(1)], axis=1)
    det = m[:, 0, 0] * m[:, 1, 1] - m[:, 0, 1] * m[:, 1, 0]
    ok = np.abs(det) > 1e-6 * np.maximum((m**2).sum((1, 2)), 1e-12)
    m, rhs, det, a = m[ok], rhs[ok], det[ok], a[ok]
    x = (rhs[:, 0] * m[:, 1, 1] - rhs[:, 1] * m[:, 0, 1]) / det
    y = (m[:, 0, 0] * rhs[:, 1] - m[:, 1, 0] * rhs[:, 0]) / det
    return np.column_stack([x, y]), np.hypot(a[:, 0] - x, a[:, 1] - y)


def _refit(p: np.ndarray, x: float, y: float, r: float) -> tuple[float, float, float, float]:
    """Least-squares circle through ``p`` ((n, 2), n >= 3) from (x, y, r): Gauss-Newton
    on the distances' residuals; (x, y, r, standard error of the centre), the residuals'
    variance at least SPOT_FLOOR^2."""
    q = np.array([x, y, r], float)
    jac = np.zeros((len(p), 3))
    res = np.zeros(len(p))
    for _ in range(20):
        dx, dy = p[:, 0] - q[0], p[:, 1] - q[1]
        d = np.maximum(np.hypot(dx, dy), 1e-12)
        res = d - q[2]
        jac = np.column_stack([-dx / d, -dy / d, -np.ones_like(d)])
        step = np.linalg.lstsq(jac, -res, rcond=None)[0]
        q += step
        if np.abs(step).max() < 1e-6:
            break
    var = max(float(res @ res) / max(len(p) - 3, 1), SPOT_FLOOR**2)
    try:
        cov = var * np.linalg.inv(jac.T @ jac)
    except np.linalg.LinAlgError:
        return float(q[0]), float(q[1]), float(q[2]), math.inf
    return float(q[0]), float(q[1]), float(q[2]), math.sqrt(max(cov[0, 0] + cov[1, 1], 0.0) / 2)


def spot_circle(level: Level) -> SpotCircle | None:
    """The circle through most spots of the level (:func:`find_spots`) within SPOT_TOL,
    refitted to them (level px); None where under three spots or the circle is larger
    than SPOT_REACH level diagonals."""
    ex = _excess(level)
    p = find_spots(ex)
    if len(p) < 3:
        return None
    centres, radii = _triples(p)
    if len(radii) == 0:
        return None
    dist = np.hypot(p[None, :, 0] - centres[:, None, 0], p[None, :, 1] - centres[:, None, 1])
    on = np.abs(dist - radii[:, None]) <= SPOT_TOL
    count = on.sum(1)
    rms = np.sqrt(np.where(on, (dist - radii[:, None]) ** 2, 0.0).sum(1) / count)
    best = int(np.lexsort((rms, -count))[0])
    sel = on[best]
    (cx, cy), r0 = centres[best], radii[best]
    x, y, r, sigma = _refit(p[sel], float(cx), float(cy), float(r0))
    if not (math.isfinite(r) and abs(r) <= SPOT_REACH * math.hypot(*level.g.shape)):
        return None
    return SpotCircle(x, y, r, sigma, int(sel.sum()), len(p), _bright(ex, x, y, r))


def _bright(ex: Excess, x: float, y: float, radius: float) -> float:
    """The share of the circle's (level px) lit interior pixels, one per level px of arc,
    whose excess is SPOT_LIT robust deviations over the median: low for spots with dark
    gaps between them, near 1 for a continuous ridge cut into pieces; 1 where the circle
    misses the lit pixels."""
    e, inner, med, dev = ex
    t = np.arange(0.0, 2.0 * math.pi, 1.0 / max(radius, 1.0))
    i = np.round(y + radius * np.sin(t)).astype(int)
    j = np.round(x + radius * np.cos(t)).astype(int)
    rows, cols = e.shape
    inside = (i >= 0) & (j >= 0) & (i < rows) & (j < cols)
    i, j = i[inside], j[inside]
    use = inner[i, j]
    if not use.any():
        return 1.0
    return float(np.mean(e[i[use], j[use]] > med + SPOT_LIT * dev))
