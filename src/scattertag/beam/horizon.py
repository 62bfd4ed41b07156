"""Grazing incidence: the film's horizon beside the mirror column and the half pattern above.

In grazing incidence the film hides the sample's scattering below its horizon (exit angle
0), which lies d tan(alpha_i) above the direct beam: under a pixel at WAXS distances, tens
to hundreds of pixels at SAXS ones (y grows down: the beam is on or below the horizon).
What shows above it is the sample's pattern about the beam cut by a straight line, a half
pattern. Point symmetry, gradient lines and the frame's isotropy take its centroid, above
the horizon, where no grazing beam can be.

Here the horizon is the largest drop of the counts less the frame's floor (an integrating
detector's offset), where they cross half the step, along bands of columns about the
mirror column (:func:`cuts`: the column itself may lie behind a stop, and a wide band
smears a spot or a ring's flank but not a straight cut); the beam is the centre about which
the lit pixels above the horizon within a window are most isotropic, searched on and below
the horizon (:func:`half_pattern`). A window supports it only where the centre searched
without that bound does not lie above the horizon either: the half pattern is isotropic
about a point the geometry allows, not about one above the cut (a spot, a blob or a ring's
own centre, whose lower flank is the drop).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from scattertag.beam import dips
from scattertag.beam.radial import Pixels, climb, isotropy, pixels

#: The horizon on a profile (:func:`step`): a drop of at least HORIZON_STEP in
#: log(1 + counts) and HORIZON_SNR times the profile's row-to-row noise.
HORIZON_STEP, HORIZON_SNR = 1.0, 10.0
#: Half-widths of the bands of columns about the mirror column whose profiles show the
#: horizon (:func:`cuts`), fractions of the frame's width, at least BAND_MIN px; two cuts
#: within CUT_APART px are one.
BANDS, BAND_MIN, CUT_APART = (0.02, 0.05, 0.12), 3.0, 2.0
#: The film cuts a pattern that goes on above it: the PERSIST rows above the step's own 4
#: stand at least half a HORIZON_STEP above the 4 below it (a streak or a zinger a few
#: rows high does not).
PERSIST = 8
#: Windows above the horizon (:func:`half_pattern`): (fraction of the longer side, least
#: radius in px), in blocks of ceil(radius / WINDOW_BLOCKS) px, the rows within EDGE px of
#: the horizon left out (the film's edge passes half); a window of fewer than
#: WINDOW_PIXELS blocks is too small to tell.
WINDOWS = ((0.02, 16.0), (0.05, 32.0), (0.12, 64.0))
WINDOW_BLOCKS, EDGE, WINDOW_PIXELS = 90, 1.5, 50
#: A window supports the half pattern when its free centre lies at most ABOVE px (plus the
#: horizon's spread) above the horizon and the bounded centre's isotropy reaches HALF_R2;
#: the rows whose isotropy is within FLAT of the best (0.5 px steps, at most FLAT_STEPS each
#: way) set the spread of y; a rival centre must explain the window HALF_GAIN worse.
ABOVE, HALF_R2, FLAT, FLAT_STEPS, HALF_GAIN = 1.5, 0.2, 0.005, 40, 0.01
#: Both centres must lie within ASIDE of the window's radius of the column searched; at
#: least HALF_WINDOWS windows must support the half pattern, and the largest of them be
#: mirror-symmetric about its centre's column (:func:`mirror`) by HALF_MIRROR.
ASIDE, HALF_WINDOWS, HALF_MIRROR = 0.25, 2, 0.5
#: The free search's steps of 0.5 and 0.25 px moved its centre at most 7.3 px (99 % under
#: 2.6; 393 searches, seeds 0 and 1): one that ends its 1 px steps farther than this
#: outside the window's bounds is not finished.
FINE_REACH = 12.0


def drops(v: np.ndarray, k: int) -> np.ndarray:
    """(n - 2k,) for each j in k .. n - k - 1: the median of v[j - k : j] less that of
    v[j : j + k] (the drop across j of a profile v (n,)), from one median per window."""
    med = np.median(np.lib.stride_tricks.sliding_window_view(v, k), axis=1)  # med[i]: v[i:i+k]
    return med[: v.size - 2 * k] - med[k : v.size - k]


def step(
    v: np.ndarray, rows: np.ndarray, within: tuple[float, float] | None = None
) -> tuple[float, float, int] | None:
    """(y_h, spread, above): the film's horizon on a column profile v (n,) of log(1 + counts)
    at frame rows ``rows`` (n,; valid rows only), or None.

    The largest drop of the median of the k = 4 valid rows above a row to the k below
    (among the rows ``within`` (first, last) frame rows, when given), at least HORIZON_STEP
    and HORIZON_SNR times the profile's row-to-row noise (:func:`dips.noise`; the film's
    shadow is a step of orders of magnitude, not a fluctuation); placed where the counts
    cross the middle of the two levels (the film transmits half), interpolated between
    adjacent rows, else midway between the last valid row above and the first below, half
    their distance its spread (a module gap there widens it; at least 0.5 px). ``above``:
    the index in v of the last sample above the crossing.
    """
    k = 4
    if v.size < 4 * k:
        return None
    fall = drops(v, k)
    if within is not None:
        at = rows[k : v.size - k]
        fall = np.where((at >= within[0]) & (at <= within[1]), fall, -np.inf)
    j = k + int(np.argmax(fall))
    if fall[j - k] < max(HORIZON_STEP, HORIZON_SNR * dips.noise(v)):
        return None
    lin = np.expm1(v)
    mid = 0.5 * (np.median(lin[j - k : j]) + np.median(lin[j : j + k]))
    above = j - 1
    while above > 0 and lin[above] < mid:
        above -= 1
    below = above + 1
    while below < v.size - 1 and lin[below] >= mid:
        below += 1
    gap = float(rows[below] - rows[above])
    y_h = rows[above] + (0.5 * gap if gap > 1 else (lin[above] - mid) / (lin[above] - lin[below]))
    return float(y_h), max(0.5 * gap, 0.5), above


def lit_at(lit: np.ndarray, b: int, ys: slice, xs: slice) -> np.ndarray:
    """(rows, cols) bool of the frame pixels ys x xs (slices with start and stop) whose
    block of a level ``lit`` (R, C; blocks of b px) is lit; pixels past the level's last
    block count as lit."""
    iy = np.arange(ys.start, ys.stop) // b
    ix = np.arange(xs.start, xs.stop) // b
    rows, cols = lit.shape
    inside = (iy < rows)[:, None] & (ix < cols)[None, :]
    return np.where(inside, lit[np.minimum(iy, rows - 1)][:, np.minimum(ix, cols - 1)], True)


@dataclass(frozen=True)
class Cut:
    """The film's horizon on a band of columns: the row where the counts cross half the
    step, and its spread (px)."""

    y: float
    spread: float


def _band_sums(
    use: np.ndarray, counts: np.ndarray
) -> Callable[[int, int], tuple[np.ndarray, np.ndarray]]:
    """For a window's (rows, cols) pixels ``use`` and ``counts``: the function of columns
    a..b - 1 giving each row's count of used pixels and sum of their counts, (rows,) float64
    each: differences of running sums along the rows (float64 counts of pixels, the counts'
    sums in their own type), every band from the same two. Integer counts of up to 32 bits
    sum to whole numbers under 2^53, exact in any order, so a band's direct sums are those
    differences, without the running sums' passes over the whole window."""
    vals = np.where(use, counts, 0)
    if counts.dtype.kind in "iu" and counts.dtype.itemsize <= 4:

        def direct(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
            n = np.count_nonzero(use[:, a:b], axis=1).astype(np.float64)
            return n, vals[:, a:b].sum(axis=1).astype(np.float64)

        return direct
    rows = use.shape[0]
    n = np.hstack([np.zeros((rows, 1)), np.cumsum(use, axis=1, dtype=np.float64)])
    s = np.hstack([np.zeros((rows, 1)), np.cumsum(vals, axis=1)])
    return lambda a, b: (n[:, b] - n[:, a], s[:, b] - s[:, a])


def cuts(
    counts: np.ndarray,
    ok: np.ndarray,
    lit: tuple[np.ndarray, int],
    x: float,
    floor: float,
    start: int = 0,
) -> list[Cut]:
    """The horizon's candidates about column x: the step (:func:`step`) of the profile of
    log(1 + mean counts - floor) (0 at or below the floor) of each band of columns
    x +- max(BAND_MIN, f x width), f in BANDS, over the valid pixels of lit blocks (``lit``:
    a level's lit blocks and its block size; beamstop shadows are no horizon) in the rows
    from ``start`` down (rows under a quarter usable are left out); distinct cuts, the
    narrowest band's first, whose PERSIST rows above the step's stand half a HORIZON_STEP
    above the 4 rows below it."""
    rows, cols = counts.shape
    half = max(BAND_MIN, BANDS[-1] * cols)
    c0, c1 = max(round(x - half), 0), min(round(x + half) + 1, cols)
    if c1 <= c0 or rows - start < 16:
        return []
    ys, xs = slice(start, rows), slice(c0, c1)
    band = _band_sums(ok[ys, xs] & lit_at(*lit, ys, xs), counts[ys, xs])
    out: list[Cut] = []
    for frac in BANDS:
        w = max(BAND_MIN, frac * cols)
        a, b = max(round(x - w), c0) - c0, min(round(x + w) + 1, c1) - c0
        nb, sb = band(a, b)
        good = np.flatnonzero(nb >= 0.25 * (b - a))
        if good.size < 16:
            continue
        v = np.log1p(np.maximum(sb[good] / nb[good] - floor, 0.0))
        at = good + start
        found = step(v, at)
        if found is None or any(abs(found[0] - c.y) <= CUT_APART for c in out):
            continue
        higher = v[(at < found[0] - 4) & (at >= found[0] - 4 - PERSIST)]
        lower = v[(at > found[0]) & (at <= found[0] + 4)]
        if (
            higher.size
            and lower.size
            and np.median(higher) - np.median(lower) >= 0.5 * HORIZON_STEP
        ):
            out.append(Cut(found[0], found[1]))
    return out


def window(
    counts: np.ndarray,
    ok: np.ndarray,
    lit: tuple[np.ndarray, int],
    x: float,
    y_h: float,
    radius: float,
) -> tuple[Pixels, int] | None:
    """(pixels, bb): the blocks of bb = ceil(radius / WINDOW_BLOCKS) px, log(1 + mean
    counts) of their valid pixels of lit level blocks (at least half of each), whose centres
    lie within ``radius`` of (x, y_h) and at least EDGE px above the horizon row y_h; None
    under WINDOW_PIXELS blocks."""
    bb = max(1, math.ceil(radius / WINDOW_BLOCKS))
    y1 = math.floor(y_h - EDGE) + 1  # rows < y1 lie at least EDGE above the horizon
    x0 = max(math.floor(x - radius), 0)
    n_rows = min(math.ceil(radius / bb), max(y1, 0) // bb)
    n_cols = (min(math.ceil(x + radius) + 1, counts.shape[1]) - x0) // bb
    if n_rows < 1 or n_cols < 1:
        return None
    ys, xs = slice(y1 - n_rows * bb, y1), slice(x0, x0 + n_cols * bb)
    use = ok[ys, xs] & lit_at(*lit, ys, xs)
    shape = (n_rows, bb, n_cols, bb)
    sums = np.where(use, counts[ys, xs], 0).reshape(shape).sum(axis=(1, 3), dtype=np.float64)
    n = use.reshape(shape).sum(axis=(1, 3))
    iy, ix = np.nonzero(n >= 0.5 * bb * bb)
    px = xs.start + ix * bb + 0.5 * (bb - 1)
    py = ys.start + iy * bb + 0.5 * (bb - 1)
    near = np.hypot(px - x, py - y_h) <= radius
    if np.count_nonzero(near) < WINDOW_PIXELS:
        return None
    g = np.log1p(sums[iy, ix][near] / n[iy, ix][near])
    return pixels(px[near], py[near], g), bb


@dataclass(frozen=True)
class Half:
    """The beam of a half pattern above a horizon: (x, y) px, the spread of y (px), the
    isotropy R^2 about it in the window that gave it, and how many windows support it."""

    x: float
    y: float
    spread: float
    r2: float
    windows: int


def half_pattern(
    counts: np.ndarray,
    ok: np.ndarray,
    lit: tuple[np.ndarray, int],
    x: float,
    cut: Cut,
    rival: tuple[float, float] | None = None,
) -> Half | None:
    """The beam below the horizon ``cut`` of a half pattern about column x, or None.

    In each window (:func:`window`, radii WINDOWS) two pattern searches (:func:`climb`,
    4 px down to 0.25 px, radius bins of a block) start at the horizon on column x: one
    free, one kept on or below the horizon. A window supports the pattern when the free
    centre lies at most ABOVE px (plus the cut's spread) above the horizon, the bounded
    centre's isotropy reaches HALF_R2, both centres lie within ASIDE of the window's radius
    of column x and at most the radius below the horizon (:func:`_within`), and, given a
    ``rival`` centre (x, y), when that explains the window at least HALF_GAIN worse. At
    least HALF_WINDOWS windows must support it, and the largest, which gives the centre,
    be mirror-symmetric about the centre's column (:func:`mirror`, HALF_MIRROR); its
    spread is half the run of rows on column x about it whose isotropy lies within FLAT of
    the best (at least 0.5 px).
    """
    side = max(counts.shape)
    best = None
    support = 0
    for k, (frac, least) in enumerate(WINDOWS):
        if support + len(WINDOWS) - k < HALF_WINDOWS:
            return None  # the windows left cannot bring the support to HALF_WINDOWS
        got = window(counts, ok, lit, x, cut.y, max(least, frac * side))
        if got is None:
            continue
        px, bb = got
        radius = max(least, frac * side)
        fx, fy, _ = climb(px, (x, cut.y), 4.0, 1.0, bb)  # the steps of 4, 2 and 1 px
        if not _within(fx - x, fy - cut.y, radius, -ABOVE - cut.spread, FINE_REACH):
            continue  # too far for the finer steps to bring back
        fx, fy, _ = climb(px, (fx, fy), 0.5, 0.25, bb)  # the same search, finished
        if not _within(fx - x, fy - cut.y, radius, -ABOVE - cut.spread):
            continue  # isotropic about a point above the cut, aside or beyond the window
        cx, cy, r2 = climb(px, (x, cut.y + 1.0), 4.0, 0.25, bb, y_min=cut.y)
        if r2 < HALF_R2 or not _within(cx - x, cy - cut.y, radius, 0.0):
            continue
        if rival is not None and isotropy(px, *rival, bb) > r2 - HALF_GAIN:
            continue
        support += 1
        best = (px, bb, cx, cy, r2)
    if best is None or support < HALF_WINDOWS:
        return None
    px, bb, cx, cy, r2 = best
    if mirror(counts, ok, lit, cx, cut.y, px_radius(px, cx, cut.y), bb) < HALF_MIRROR:
        return None
    return Half(cx, cy, _spread(px, bb, cx, cy, r2, cut.y), r2, support)


def px_radius(px: Pixels, x: float, y: float) -> float:
    """The largest distance (px) of the pixels px from (x, y): a window's radius."""
    return float(np.sqrt(np.max((px.x - x) ** 2 + (px.y - y) ** 2)))


def mirror(
    counts: np.ndarray,
    ok: np.ndarray,
    lit: tuple[np.ndarray, int],
    x: float,
    y_h: float,
    radius: float,
    bb: int,
) -> float:
    """Correlation of log(1 + counts), averaged over bb x bb (valid pixels of lit blocks),
    between the columns left and right of column round(x) at the same row, over the rows
    from ``radius`` above the horizon y_h to EDGE above it and ``radius`` aside; NaN
    under WINDOW_PIXELS pairs. A half pattern is mirror-symmetric about its beam's column
    (the plane of incidence), a ramp, a band or noise is not."""
    c = round(x)
    w = min(int(radius), c, counts.shape[1] - 1 - c)
    y1 = math.floor(y_h - EDGE) + 1
    y0 = max(y1 - int(radius), 0)
    if w < 2 or y1 - y0 < 2:
        return math.nan
    ys, xs = slice(y0, y1), slice(c - w, c + w + 1)
    use = (ok[ys, xs] & lit_at(*lit, ys, xs)).astype(np.float64)
    v = np.where(use > 0, counts[ys, xs], 0).astype(np.float64)
    if bb > 1:
        v = ndimage.uniform_filter(v, bb, mode="constant")
        use = ndimage.uniform_filter(use, bb, mode="constant")
    g = np.log1p(v / np.maximum(use, 1e-12))
    good = use > 0.5
    both = good[:, :w][:, ::-1] & good[:, w + 1 :]
    left, right = g[:, :w][:, ::-1][both], g[:, w + 1 :][both]
    if left.size < WINDOW_PIXELS or left.std() == 0 or right.std() == 0:
        return math.nan
    return float(np.corrcoef(left, right)[0, 1])


def _within(dx: float, dy: float, radius: float, lowest: float, slack: float = 0.0) -> bool:
    """True for a centre (dx, dy) px from the horizon on the column searched that lies
    within ASIDE of the window's radius of the column, at least ``lowest`` (negative:
    above) and at most ``radius`` below the horizon, each bound widened by ``slack`` px:
    its pattern shows in the window."""
    return abs(dx) <= ASIDE * radius + slack and lowest - slack <= dy <= radius + slack


def _spread(px: Pixels, bb: int, x: float, y: float, r2: float, y_min: float) -> float:
    """Half the run of rows about y (0.5 px steps, none above y_min) whose isotropy about
    (x, row) lies within FLAT of r2, in px (at least 0.5)."""
    up = down = 0
    while up < FLAT_STEPS and y - 0.5 * (up + 1) >= y_min:
        if isotropy(px, x, y - 0.5 * (up + 1), bb) < r2 - FLAT:
            break
        up += 1
    while down < FLAT_STEPS and isotropy(px, x, y + 0.5 * (down + 1), bb) >= r2 - FLAT:
        down += 1
    return max(0.25 * (up + down), 0.5)
