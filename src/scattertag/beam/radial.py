"""Isotropy about a point: how much of a pattern a radial profile about it explains.

``Pixels`` (positions and log-counts of the lit pixels of a level or of a window),
``isotropy`` (adjusted R^2 of a radial profile in bins of a given width) and ``climb`` (the
pattern search for the most isotropic centre), shared by the isotropy search of
:mod:`scattertag.beam.center` and the half pattern above a grazing-incidence horizon
(:mod:`scattertag.beam.horizon`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pixels:
    """Lit pixels of a level (a regular subsample): positions (x, y), values g, sum of g^2
    and SS_total = sum (g - mean g)^2."""

    x: np.ndarray
    y: np.ndarray
    g: np.ndarray
    sumsq: float
    total: float


def pixels(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> Pixels:
    """:class:`Pixels` of positions x, y (n,) and values g (n,), with their sums."""
    sumsq = float(np.sum(g * g))
    total = sumsq - float(g.sum()) ** 2 / max(g.size, 1)
    return Pixels(x, y, g, sumsq, total)


def isotropy(px: Pixels, cx: float, cy: float, step: float = 1.0) -> float:
    """Adjusted R^2 of g explained by a radial profile about (cx, cy) (bins ``step`` px).

    R^2 = 1 - [SS_within / (N - K)] / [SS_total / (N - 1)] with K occupied radius bins;
    1 for a perfectly isotropic pattern about (cx, cy), about 0 for noise. SS_within =
    sum g^2 - sum_k s_k^2 / n_k (s_k, n_k: sum of g and count in bin k). In float64: the
    isotropy search climbs valleys flat to ~1e-5 in R^2, where float32 radii (a pixel to
    ~1e-5 px of a bin's edge changes bin) choose other paths (lab notebook, session 14).
    """
    r = px.x - cx  # r = sqrt(dx^2 + dy^2) in place (not np.hypot: 40 % slower, no overflow)
    r *= r
    dy = px.y - cy
    dy *= dy
    r += dy
    np.sqrt(r, out=r)
    r -= r.min()
    if step != 1.0:
        r /= step
    k = r.astype(np.intp)
    n = np.bincount(k)
    s = np.bincount(k, px.g)
    used = np.flatnonzero(n)
    within = px.sumsq - float(np.sum(s[used] ** 2 / n[used]))
    total = px.total
    dof = px.g.size - used.size
    if total <= 0 or dof < 0.25 * px.g.size:
        return 0.0
    # Python's min / max: np.clip's ~6 us a call on a scalar, the same float
    return min(max(1.0 - (within / dof) / (total / (px.g.size - 1)), -1.0), 1.0)


def climb(
    px: Pixels,
    start: tuple[float, float],
    step: float,
    last: float,
    bin_px: float = 1.0,
    y_min: float = -math.inf,
) -> tuple[float, float, float]:
    """Pattern search for the most isotropic centre: halve ``step`` down to ``last``, never
    above row ``y_min`` (a grazing beam lies on or below the film's horizon).

    Each point is scored once (a step back to the point it came from, or a smaller step
    onto one already tried, reuses its score)."""
    cx, cy = start[0], max(start[1], y_min)
    best = isotropy(px, cx, cy, bin_px)
    seen = {(cx, cy): best}
    while step >= last:
        moved = False
        for dx, dy in ((step, 0), (-step, 0), (0, step), (0, -step)):
            key = (cx + dx, cy + dy)
            if key[1] < y_min:
                continue
            score = seen.get(key)
            if score is None:
                score = seen[key] = isotropy(px, *key, bin_px)
            if score > best:
                best, cx, cy, moved = score, cx + dx, cy + dy, True
                break
        if not moved:
            step /= 2
    return cx, cy, best
