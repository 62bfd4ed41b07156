"""Grazing incidence: the direct beam on the mirror column of a frame cut by a film's horizon.

y from the specular geometry, from the small stops over the beam and the spot, from the
round end of a stop over the beam traced on either side of the horizon, or from the half
pattern above the horizon (:func:`grazing_candidate`); a found centre above such a
horizon gives way to the half pattern's beam (:func:`below_horizon`). The horizon's cuts
and the half pattern themselves: :mod:`scattertag.beam.horizon`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from scattertag.beam import dips, horizon, shadow
from scattertag.beam.bars import bar_tips
from scattertag.beam.candidates import Candidate
from scattertag.beam.disks import circle_from, shadow_circles
from scattertag.beam.grid import on_frame
from scattertag.beam.order_stats import nanmedian_rows, percentile
from scattertag.beam.pyramid import Level, pixels
from scattertag.beam.radial import isotropy
from scattertag.beam.reflection import fast_len, parabola
from scattertag.beam.symmetry import pair_correlation

#: Grazing incidence (:func:`grazing_candidate`, tried only when the centre is not found otherwise):
#: a horizon is a drop of at least HORIZON_DROP in the mean of g across it (windows of
#: rows / 64 rows, at least 2) in the median column, and a drop in HORIZON_COLUMNS of the
#: columns; the mirror column's pairs must cover GRAZING_OVERLAP of the lit pixels and
#: correlate GRAZING_RHO.
HORIZON_DROP, HORIZON_COLUMNS = 0.3, 0.8
#: On the specular column (:func:`_specular`): the horizon is a step (:func:`horizon.step`);
#: the specular spot exceeds the running median over +-SPOT_REACH rows by at least
#: SPOT_CONTRAST, and the columns SPOT_SIDE of the width aside by half as much at most.
SPOT_REACH, SPOT_CONTRAST, SPOT_SIDE = 8, 1.0, 0.01
#: The film's horizon on the specular column is a step of the pattern, not a spot's edge:
#: the median of the HORIZON_PERSIST rows above the step's own 4 stands at least half a
#: horizon.HORIZON_STEP above that of as many below (a bright spot or defect 20-30 rows
#: high, whose lower edge is a drop too, falls back to the background within them).
HORIZON_PERSIST = 32
GRAZING_OVERLAP, GRAZING_RHO = 0.3, 0.5
#: A found centre gives way to a half pattern's beam (:func:`below_horizon`) under a
#: horizon at least HALF_CLEAR px below it, when it lies within HALF_NEAR of the width of
#: the mirror column.
HALF_CLEAR, HALF_NEAR = 2.0, 0.02
#: Small stops on the specular column (:func:`_column_stops`): an interval at least
#: STOP_SHORTEST rows long (a stop narrower than a few pixels stops no beam; a dead pixel
#: is one row); one stop below the horizon without a partner above is evidence STOP_SINGLE.
STOP_SHORTEST, STOP_SINGLE = 3.0, 0.5
#: A stop's round end over the direct beam (:func:`_film_stop`) lies within STOP_ASIDE of
#: the frame's width of the mirror column (the beam's column) and at most
#: horizon.ABOVE px (plus the horizon's spread) above the film's horizon.
STOP_ASIDE = 0.05
#: Where no shadow gives a stop's fit (:func:`_chord`): its chord on the mean of CHORD_ROWS
#: rows just above the horizon, at least CHORD_LEAST px long on either side of its middle.
CHORD_ROWS, CHORD_LEAST = 3, 2.5


def _mirror_column(level: Level) -> tuple[float, float]:
    """(x, rho): the column x (level px) about which g is most left-right symmetric, and the
    correlation of the pairs g(i, j), g(i, 2x - j) over the lit pixels.

    A grazing-incidence pattern is mirror-symmetric about the plane of incidence (the
    column of the direct beam and the specular rod), not point-symmetric: the film hides
    everything below its horizon. As :func:`symmetry_map`, with 1-D convolutions along
    the rows summed over the rows (in Fourier space) for every s = 2x at once; the pairs
    must cover GRAZING_OVERLAP of the lit pixels.
    """
    m = level.lit.astype(np.float64)
    big = level.g * m
    size = 2 * m.shape[1] - 1
    f = fast_len(size)
    fm, fg, fg2 = (np.fft.rfft(a, f, axis=1) for a in (m, big, big * level.g))
    n, s1, s2, s12 = (
        np.fft.irfft((a * b).sum(axis=0), f)[:size]
        for a, b in ((fm, fm), (fg, fm), (fg2, fm), (fg, fg))
    )
    rho = pair_correlation(n, s1, s2, s12, GRAZING_OVERLAP * max(m.sum(), 1.0))
    if not np.isfinite(rho).any():
        return math.nan, 0.0
    k = int(np.nanargmax(rho))
    return (k + parabola(rho[None, :], 0, k, axis=1)) / 2.0, float(rho[k])


def mirror_column(level: Level) -> tuple[float, float]:
    """:func:`_mirror_column` of ``level``, computed once a level (the estimate asks it before
    the isotropy search, :func:`scattertag.beam.center._nothing_to_find`, and here)."""
    return level.kept("mirror", lambda: _mirror_column(level))


def _horizon(level: Level) -> int | None:
    """Level row h of the sample horizon (rows < h above it), or None: the row where g
    drops most from the k rows above to the k rows below (k = rows / 64, at least 2),
    the drop being the median over the columns with both windows half lit; kept if that
    median is at least HORIZON_DROP and HORIZON_COLUMNS of those columns drop."""
    m = level.lit.astype(np.float64)
    rows, cols = m.shape
    k = max(2, rows // 64)
    cg = np.vstack([np.zeros(cols), np.cumsum(level.g * m, axis=0)])
    cm = np.vstack([np.zeros(cols), np.cumsum(m, axis=0)])
    if rows < 2 * k + 1:
        return None
    h = np.arange(k, rows - k)
    na, nb = cm[h] - cm[h - k], cm[h + k] - cm[h]  # (H, C) lit rows above and below
    use = (na >= k / 2) & (nb >= k / 2)
    drop = np.where(
        use,
        (cg[h] - cg[h - k]) / np.maximum(na, 1) - (cg[h + k] - cg[h]) / np.maximum(nb, 1),
        np.nan,
    )
    enough = use.sum(axis=1) >= 0.5 * cols
    if not enough.any():
        return None
    med = np.full(h.size, -np.inf)
    med[enough] = nanmedian_rows(drop[enough])  # np.nanmedian(..., axis=1), faster
    falls = np.zeros(h.size)
    falls[enough] = np.nanmean(np.where(use, drop > 0, np.nan)[enough], axis=1)
    med[falls < HORIZON_COLUMNS] = -np.inf
    i = int(np.argmax(med))
    row = int(h[i]) if med[i] >= HORIZON_DROP else None
    return row


def _column_profile(counts: np.ndarray, ok: np.ndarray, x: float) -> np.ndarray:
    """(rows,) log(1 + mean counts) of the valid pixels of columns round(x) - 1 .. + 1, NaN
    in rows with none."""
    c = round(x)
    cols = slice(max(c - 1, 0), min(c + 2, counts.shape[1]))
    use = ok[:, cols]
    n = use.sum(axis=1)
    total = np.where(use, counts[:, cols], 0).sum(axis=1, dtype=np.float64)
    return np.where(n > 0, np.log1p(np.maximum(total, 0.0) / np.maximum(n, 1)), np.nan)


def _excess(profile: np.ndarray) -> np.ndarray:
    """(n,) how far a column profile exceeds its running median over +-SPOT_REACH rows;
    -inf where it or the median is not finite."""
    base = ndimage.median_filter(np.nan_to_num(profile, nan=-np.inf), size=2 * SPOT_REACH + 1)
    return np.where(np.isfinite(profile) & np.isfinite(base), profile - base, -np.inf)


def _specular(counts: np.ndarray, ok: np.ndarray, x: float) -> tuple[float, float] | None:
    """(y, w): the direct beam's row from the profile of the specular column x
    (:func:`_column_profile`), and its spread w (px), or None when the column shows no
    specular spot above a horizon.

    On the specular rod the film's horizon (exit angle 0) lies d tan(alpha_i) above the
    direct beam and the specular reflection (exit angle alpha_i) d tan(2 alpha_i) above
    it, so y = 2 y_h - y_s (to alpha_i^2: 1e-5 of d tan(alpha_i) at 0.4 degrees). The
    horizon y_h: :func:`_step` over the whole column.
    The spot y_s: above the horizon, the row where the profile most exceeds its running
    median over +-SPOT_REACH rows, by at least SPOT_CONTRAST, refined by a parabola; a
    spot, not a ring crossing the column: at the columns SPOT_SIDE of the width to either
    side the same row exceeds its median by at most half as much; at least SPOT_REACH rows
    above the horizon (the step's window and the spot's width: a bright band or the
    direct beam's halo at the horizon's edge is no spot).
    """
    profile = _column_profile(counts, ok, x)
    rows = np.flatnonzero(np.isfinite(profile))
    step = horizon.step(profile[rows], rows)
    if step is None:
        return None
    y_h, spread_h, above = step
    if not _persists(profile, y_h):
        return None
    top = int(rows[above]) - 2
    if top < 2 * SPOT_REACH:
        return None
    side = max(3.0, SPOT_SIDE * counts.shape[1])
    excess = _excess(profile[:top])
    i = int(np.argmax(excess))
    if excess[i] < SPOT_CONTRAST:
        return None
    for off in (-side, side):
        aside = _column_profile(counts, ok, x + off) if 0 <= x + off < counts.shape[1] else None
        if aside is not None and _excess(aside[:top])[i] > 0.5 * excess[i]:
            return None
    seg = profile[:top]
    y_s = i + parabola(np.nan_to_num(seg, nan=-np.inf)[None, :], 0, i, axis=1)
    if y_h - y_s < SPOT_REACH:
        return None  # not resolved from the horizon: a band or halo at its edge
    return 2.0 * y_h - y_s, 2.0 * spread_h


def _persists(profile: np.ndarray, y_h: float) -> bool:
    """True if the column ``profile`` (rows,; NaN where invalid) stands, in the median of
    the HORIZON_PERSIST rows above the horizon y_h (past the step's own 4), at least half a
    horizon.HORIZON_STEP above the median of as many rows below it."""
    i = round(y_h)
    above = profile[max(i - 4 - HORIZON_PERSIST, 0) : max(i - 4, 0)]
    below = profile[i + 4 : i + 4 + HORIZON_PERSIST]
    if not (np.isfinite(above).any() and np.isfinite(below).any()):
        return False
    return bool(np.nanmedian(above) - np.nanmedian(below) >= 0.5 * horizon.HORIZON_STEP)


def _column_stops(
    counts: np.ndarray, ok: np.ndarray, x: float, level: Level
) -> tuple[float, float, float] | None:
    """(y, w, evidence): the direct beam's row on the specular column x (frame px) from the
    small stops that cross it (:func:`dips.find_dips`), its spread w (px) and the evidence
    (1 for a pair of stops about the horizon, STOP_SINGLE for one stop below it), or None.

    Beamlines block the direct beam and the specular spot with small stops; both lie on
    the specular column, the beam d tan(alpha_i) below the film's horizon (y grows down:
    exit angle -alpha_i, under the sample plane), the spot as far above it (exit angle
    alpha_i), so a stop over each makes a dark interval of the column on either side of
    the horizon, their middles (a round stop's centre row: :mod:`scattertag.beam.dips`)
    mirror images about it. The horizon: :func:`_horizon` of the level (frame-wide, the
    median over the columns, which the stops do not sway), refined on the column by
    :func:`_step` within 2 blocks of it. Intervals whose top edge lies at the horizon
    (within DIP_SIDE rows and its spread) are the film's shadow, not a stop; intervals dark
    at both columns max(length, 2 DIP_SIDE) aside are bands across the frame (gaps stored
    as zeros, a bar), not a stop; a stop is at least STOP_SHORTEST rows long and at most
    2 x :data:`shadow.MAX_RADIUS` of the longer side. A pair: a lower and an upper
    interval with |y_upper + y_lower - 2 y_h| at most half their summed lengths (each stop
    covers its beam) plus the horizon's spread, the most symmetric; y is the mean of the
    lower middle and the mirror of the upper one (two estimates of the beam), w half their
    difference (at least the middles' spreads). One interval below the horizon without a
    partner: its middle (a stop is centred on the beam), w its spread.
    """
    h = _horizon(level)
    if h is None:
        return None
    y0 = h * level.b - 0.5  # frame row between level rows h - 1 and h
    profile = _column_profile(counts, ok, x)
    rows = np.flatnonzero(np.isfinite(profile))
    v = profile[rows]
    step = horizon.step(v, rows, (y0 - 2 * level.b, y0 + 2 * level.b))
    if step is None:
        return None
    y_h, w_h, _ = step
    longest = int(2 * shadow.MAX_RADIUS * max(counts.shape))
    found = [
        d
        for d in dips.find_dips(v, rows, longest)
        if d.length >= STOP_SHORTEST
        and abs(d.top - y_h) > dips.DIP_SIDE + w_h
        and not _band(counts, ok, x, d, longest)
    ]
    lower = [d for d in found if d.middle > y_h]
    upper = [d for d in found if d.middle < y_h]
    if not lower:
        return None
    pairs = [(abs(u.middle + d.middle - 2.0 * y_h), u, d) for d in lower for u in upper]
    pairs = [p for p in pairs if p[0] <= 0.5 * (p[1].length + p[2].length) + w_h]
    if not pairs:
        d = min(lower, key=lambda d: d.middle)  # the nearest the horizon
        return d.middle, max(d.spread, 0.5), STOP_SINGLE
    asym, u, d = min(pairs, key=lambda p: p[0])
    y = 0.5 * (d.middle + 2.0 * y_h - u.middle)
    w = max(0.5 * asym, math.hypot(d.spread, u.spread, 2.0 * w_h) / 2.0, 0.5)
    return y, w, 1.0


def _band(counts: np.ndarray, ok: np.ndarray, x: float, d: dips.Dip, longest: int) -> bool:
    """True if the columns max(length, 2 DIP_SIDE) to both sides of x are as dark at the
    middle of the interval d (at least half its depth below their closing): a band across
    the frame, not a stop."""
    off = max(d.length, 2.0 * dips.DIP_SIDE)
    row = round(d.middle)
    for side in (x - off, x + off):
        if not 0 <= side < counts.shape[1]:
            return False
        p = _column_profile(counts, ok, side)
        if not np.isfinite(p[row]):
            return False
        rows = np.flatnonzero(np.isfinite(p))
        dark = dips.depth(p[rows], longest)[np.searchsorted(rows, row)]
        if dark < 0.5 * d.depth:
            return False
    return True


def _cuts(
    counts: np.ndarray,
    ok: np.ndarray,
    level: Level,
    x: float,
    rival: tuple[float, float] | None = None,
) -> list[horizon.Cut]:
    """The film's horizons about column x (frame px; :func:`horizon.cuts`, the floor the
    0.5th percentile of the level's valid block means) over the whole column, or, given a
    ``rival`` centre (x, y), from its row + HALF_CLEAR down and at least HALF_CLEAR and 2
    spreads below it."""
    floor = percentile(level.means[level.ok], 0.5) if level.ok.any() else 0.0
    start = 0 if rival is None else max(math.ceil(rival[1] + HALF_CLEAR), 0)
    found = horizon.cuts(counts, ok, (level.lit, level.b), x, floor, start)
    if rival is None:
        return found
    return [c for c in found if c.y - rival[1] >= max(HALF_CLEAR, 2.0 * c.spread)]


def _half(
    counts: np.ndarray,
    ok: np.ndarray,
    level: Level,
    x: float,
    cuts: list[horizon.Cut],
    rival: tuple[float, float] | None = None,
) -> horizon.Half | None:
    """The beam of the half pattern above the film's horizon about column x (frame px),
    under each of ``cuts`` (:func:`_cuts`), the one of largest isotropy
    (:func:`horizon.half_pattern`, which a ``rival`` centre (x, y) must explain worse),
    or None."""
    lit = (level.lit, level.b)
    halves = [horizon.half_pattern(counts, ok, lit, x, cut, rival) for cut in cuts]
    return max((h for h in halves if h is not None), key=lambda h: h.r2, default=None)


def _half_candidate(half: horizon.Half, rho: float) -> tuple[Candidate, float]:
    """The ``grazing`` candidate of a half pattern and its confidence: 0.7 (one estimator)
    times clip((R^2 - 0.02) / 0.1, 0, 1) times P = 1 - exp(-t^2 / w^2), t = 2 px, w the
    spread of y."""
    evidence = float(np.clip((half.r2 - 0.02) / 0.1, 0.0, 1.0))
    conf = 0.7 * evidence * (1.0 - math.exp(-4.0 / half.spread**2))
    cand = Candidate("grazing", half.x, half.y, half.spread, 0.0, half.r2, half.r2, rho=rho)
    return cand, conf


def grazing_candidate(
    counts: np.ndarray, ok: np.ndarray, level: Level
) -> tuple[Candidate, float] | None:
    """The direct beam of a grazing-incidence frame (method ``grazing``) and its
    confidence, or None when the frame shows no mirror line or nothing fixes y.

    x is the mirror column (:func:`_mirror_column`, at least GRAZING_RHO). y lies on that
    column: from the specular geometry (:func:`_specular`: 2 y_horizon - y_spot) when the
    column shows a spot above a horizon, else from the small stops over the direct beam
    and the spot (:func:`_column_stops`), else x and y from the round end of a stop over
    the beam (:func:`_film_stop`), else from the half pattern above the horizon
    (:func:`_half`: x and y both from its isotropy, y on or below the horizon).
    Confidence 0.7 (one estimator) times the evidence (1 for the specular geometry, a
    pair of stops and a stop's round end, STOP_SINGLE for one stop, clip((R^2 - 0.02) /
    0.1, 0, 1) for the half pattern) times P = 1 - exp(-t^2 / w^2), t = 2 px (the goal's
    tolerance), w the spread of y (a round end's: its standard error): a y the frame does
    not fix is "not found".
    """
    x, rho = mirror_column(level)
    if not (math.isfinite(x) and rho >= GRAZING_RHO):
        return None
    fx = level.to_frame(x, 0.0)[0]
    spec = _specular(counts, ok, fx)
    found_y = (*spec, 1.0) if spec is not None else _column_stops(counts, ok, fx, level)
    if found_y is None:
        cuts = _cuts(counts, ok, level, fx)
        stop = _film_stop(counts, ok, level, fx, cuts)
        if stop is None:
            half = _half(counts, ok, level, fx, cuts)
            return None if half is None else _half_candidate(half, rho)
        fx, fy, w = stop  # the stop's centre gives x too
        x, found_y = level.from_frame(fx, fy)[0], (fy, w, 1.0)
    fy, w, evidence = found_y
    iso = isotropy(pixels(level), x, level.from_frame(fx, fy)[1])
    conf = 0.7 * evidence * (1.0 - math.exp(-4.0 / (w * w)))
    return Candidate("grazing", fx, fy, w, 0.0, iso, iso, rho=rho), conf


def _film_stop(
    counts: np.ndarray, ok: np.ndarray, level: Level, x: float, cuts: list[horizon.Cut]
) -> tuple[float, float, float] | None:
    """(x, y, sigma) frame px: the centre of the round end of a stop over the direct beam,
    bar tip or disk (:func:`bar_tips`, :func:`shadow_circles`, their own gates), its edge
    traced on either side of a film's horizon (``cuts``) on its own scale, or None.

    The direct beam lies d tan(alpha_i) below the film's horizon (exit angle -alpha_i; y
    grows down), the specular spot as far above it: a stop over the beam straddles the
    horizon or lies under it, and is centred on the beam, on the mirror column x (frame
    px). Above the horizon its edge borders the sample's pattern, below it only the
    background (the film hides the scattering), tens to thousands of times dimmer, so one
    threshold for both sides sees the upper part alone (the two sides of a bar, which do
    not fix the centre along it) and the film's step beside the stop is the strongest edge
    there. Kept: fits within STOP_ASIDE of the width of x and at most horizon.ABOVE px
    (plus the cut's spread) above the horizon; the most precise."""
    shadows = level.shadows(max(counts.shape))
    if shadows.count == 0:
        return None
    aside = STOP_ASIDE * counts.shape[1]
    fits: list[tuple[float, float, float]] = []
    for cut in cuts:
        ends = bar_tips(counts, ok, shadows, horizon=cut.y)
        circles = shadow_circles(counts, ok, shadows, horizon=cut.y)
        centres = [(e.sigma, e.x, e.y) for e in ends] + [(c.sigma, c.x, c.y) for c in circles]
        if not centres:
            centres = _chord_circles(counts, ok, x, cut, level.b)
        fits += [
            f
            for f in centres
            if abs(f[1] - x) <= aside and f[2] >= cut.y - horizon.ABOVE - cut.spread
        ]
    if not fits:
        return None
    sigma, fx, fy = min(fits)
    return fx, fy, sigma


def _chord_circles(
    counts: np.ndarray, ok: np.ndarray, x: float, cut: horizon.Cut, b_max: int
) -> list[tuple[float, float, float]]:
    """(sigma, x, y) of the first circle (:func:`circle_from`, traced on either side of
    the horizon) started from the stop's chord just above the horizon (:func:`_chord`):
    the disk's centre lies on or below the horizon, at depth delta, where its chord is
    c = sqrt(R^2 - delta^2); starts at delta 0 and c / 2, radius c."""
    chord = _chord(counts, ok, x, cut.y)
    if chord is None:
        return []
    mx, c = chord
    for depth in (0.0, 0.5 * c):
        fit = circle_from(counts, ok, (mx, cut.y + depth), c, b_max, cut.y)
        if fit is not None:
            return [(fit.sigma, fit.x, fit.y)]
    return []


def _chord(counts: np.ndarray, ok: np.ndarray, x: float, y_h: float) -> tuple[float, float] | None:
    """(x, c) frame px: the middle and half-length of a stop's chord just above the film's
    horizon y_h, or None: on the mean counts of the CHORD_ROWS rows at least horizon.EDGE px
    above it, the run of columns darker than halfway from the floor (1st percentile) to the
    light (75th) within shadow.MAX_RADIUS of the longer side of column x, nearest x."""
    y1 = math.floor(y_h - horizon.EDGE) + 1
    if y1 < CHORD_ROWS:
        return None
    reach = round(shadow.MAX_RADIUS * max(counts.shape))
    lo, hi = max(round(x) - reach, 0), min(round(x) + reach + 1, counts.shape[1])
    use = ok[y1 - CHORD_ROWS : y1, lo:hi]
    n = use.sum(axis=0)
    if np.count_nonzero(n) < 8:
        return None
    mean = np.where(use, counts[y1 - CHORD_ROWS : y1, lo:hi], 0).sum(axis=0) / np.maximum(n, 1)
    good = np.flatnonzero(n > 0)
    floor, light = percentile(mean[good], 1), percentile(mean[good], 75)
    dark = (n > 0) & (mean < floor + 0.5 * (light - floor))
    if light <= floor or not dark.any():
        return None
    at = np.flatnonzero(dark)
    j = int(at[np.argmin(np.abs(at + lo - x))])
    a, b = j, j
    while a > 0 and dark[a - 1]:
        a -= 1
    while b < dark.size - 1 and dark[b + 1]:
        b += 1
    if b - a + 1 < 2 * CHORD_LEAST:
        return None
    return lo + 0.5 * (a + b), 0.5 * (b - a + 1)


def below_horizon(
    counts: np.ndarray, ok: np.ndarray, level: Level, best: Candidate
) -> tuple[Candidate, float] | None:
    """A found centre that a grazing beam cannot have, replaced: the ``grazing`` candidate
    of the half pattern (:func:`_half`) under a horizon that crosses the chosen centre's
    column at least HALF_CLEAR px below it, when the half pattern is isotropic about a
    point on or below that horizon and not about the chosen centre (the centroid of the
    half pattern, which point symmetry, gradient lines, the isotropy of the whole frame
    and arcs cut by the horizon find), with its confidence (:func:`_half_candidate`);
    None where no such horizon shows (frames without a film). The chosen centre must lie
    on the frame within HALF_NEAR of the width of the mirror column (:func:`_mirror_column`,
    at least GRAZING_RHO): a half pattern is mirror-symmetric about the beam's column.
    """
    if not on_frame(best.x, best.y, counts.shape):
        return None
    cuts = _cuts(counts, ok, level, best.x, (best.x, best.y))
    if not cuts:  # no horizon below the choice (most frames): no mirror column needed
        return None
    x, rho = mirror_column(level)
    if not (math.isfinite(x) and rho >= GRAZING_RHO):
        return None
    if abs(level.to_frame(x, 0.0)[0] - best.x) > HALF_NEAR * counts.shape[1]:
        return None
    half = _half(counts, ok, level, best.x, cuts, (best.x, best.y))
    return None if half is None else _half_candidate(half, rho)
