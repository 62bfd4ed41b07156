"""What the radial profile of g about a point on the ring level shows.

A ring's crest (:func:`crest`), an arc that is a circle about the point (:func:`round_arc`),
the share of the structure that is radial (:func:`local_isotropy`, :func:`pinned`) and a
bright flat top bounded by a step, a window's or an aperture's (:func:`plateau`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from scattertag.beam import compact
from scattertag.beam.boxes import nonzero2d
from scattertag.beam.candidates import Candidate
from scattertag.beam.grid import on_frame
from scattertag.beam.pyramid import Level, dark_floor
from scattertag.beam.rings import TIE_RMS, arc_spread, level_ridges

#: A ring fit stands on its own (:func:`confidence`) only if the radial profile of g about
#: its centre, over one of CREST_SECTORS sectors at least, shows a crest CREST_Z standard
#: errors above the lowest bin within CREST_REACH ring-level pixels on either side
#: (:func:`crest`); standard errors under CREST_SE_FLOOR (in g) count as that.
CREST_SECTORS, CREST_REACH, CREST_Z, CREST_SE_FLOOR = 4, 4, 10.0, 1e-3
#: A bright flat top about a centre (:func:`plateau`): the radial profile of g spans at
#: most PLATEAU_FLAT (10 % in counts: a flat field's ripple, azimuthally averaged) or 6
#: counting-noise standard errors over at least PLATEAU_MIN ring-level pixels (a window is
#: 15-40 % of the frame's side, 38-100 of them; a saturated spot's core 1-3), then steps
#: down by PLATEAU_STEP (a factor 1.65 in counts) within PLATEAU_EDGE of its radius (a
#: window's blurred edge 0.02-0.1 of it, a falloff's over 1).
PLATEAU_FLAT, PLATEAU_MIN, PLATEAU_STEP, PLATEAU_EDGE = 0.1, 8, 0.5, 0.25
#: The pattern about a centre pins it (:func:`local_isotropy`) when, over PIN_REACH
#: ring-level pixels about it in PIN_SECTORS sectors, at least PIN_ISOTROPY of its
#: structure beyond the noise is radial (a ring, halo or falloff: 0.19-1 on the simulated
#: hits of seeds 0 and 1 but for spots and a rod's tip; the middle of a cosmic-ray track,
#: of a slow background's bump or of nothing: 0-0.15).
PIN_REACH, PIN_SECTORS, PIN_ISOTROPY = 32, 8, 0.17
#: An arc carries a centre (:func:`round_arcs`) when it is a circle about it (TIE_RMS) whose
#: sagitta there is at least ROUND_BEND times the rms of its distances about their mean
#: (at least ROUND_FLOOR level px: a trace's own scatter).
ROUND_BEND, ROUND_FLOOR = 10.0, 0.03


def _radial(
    ring: Level, x: float, y: float, sectors: int = 1, reach: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The radial profile of g about frame point (x, y) on the ring level's lit pixels, per
    sector (``sectors`` about the point) and radius bin of one level pixel: (n, m, sd), each
    (sectors, bins): pixel count, mean m_k (NaN under 5 pixels) and the pixels' standard
    deviation. With ``reach`` only the pixels of the box reach + 1 level pixels about the
    point are read: bins up to ``reach`` are whole, farther ones partial."""
    lx, ly = ring.from_frame(x, y)
    if reach is None:  # every lit pixel: their places and g read once a level
        iy, ix, g = ring.kept("lit pixels", lambda: _lit_pixels(ring))
    else:
        r0, c0 = max(int(ly) - reach - 1, 0), max(int(lx) - reach - 1, 0)
        lit = ring.lit[r0 : max(int(ly) + reach + 3, 0), c0 : max(int(lx) + reach + 3, 0)]
        iy, ix = nonzero2d(lit)
        iy, ix = iy + r0, ix + c0
        g = ring.g[iy, ix]
    if iy.size == 0:
        empty = np.zeros((sectors, 0))
        return empty, empty, empty
    dx, dy = ix - lx, iy - ly
    k = np.sqrt(dx * dx + dy * dy).astype(np.intp)
    bins = int(k.max()) + 1
    idx = k
    if sectors > 1:
        sector = ((np.arctan2(dy, dx) + math.pi) * (sectors / (2 * math.pi))).astype(np.intp)
        idx = np.minimum(sector, sectors - 1) * bins + k
    size = sectors * bins
    n = np.bincount(idx, minlength=size).reshape(sectors, bins)
    s1 = np.bincount(idx, g, size).reshape(sectors, bins)
    s2 = np.bincount(idx, g * g, size).reshape(sectors, bins)
    use = n >= 5
    m = np.where(use, s1 / np.maximum(n, 1), np.nan)
    sd = np.sqrt(np.maximum(np.where(use, s2 / np.maximum(n, 1), 0) - np.nan_to_num(m) ** 2, 0))
    return n, m, sd


def _lit_pixels(level: Level) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(iy, ix, g), each (N,): the level's lit pixels, row-major, and g there."""
    iy, ix = nonzero2d(level.lit)
    return iy, ix, level.g[iy, ix]


def crest(ring: Level, x: float, y: float) -> float:
    """:func:`_crest`, taken once a point and level (the give-up test's choice, the pinned
    choice and the fallbacks ask it of the same candidates)."""
    return ring.kept(("crest", x, y), lambda: _crest(ring, x, y))


def _crest(ring: Level, x: float, y: float) -> float:
    """The largest crest of the radial profile of g about frame point (x, y), in standard
    errors: per sector (CREST_SECTORS about the point) and radius bin (:func:`_radial`),
    a crest is a bin at least as high as its neighbours, its height the smaller of
    m_k - min m over the CREST_REACH bins inside and outside it, over its standard error
    (at least CREST_SE_FLOOR). A ring about the point is a crest of tens to hundreds of
    standard errors; a step (a window's edge, a shadow's) or arcs about another point give
    none."""
    n, m, sd = _radial(ring, x, y, CREST_SECTORS)
    if m.shape[1] == 0:
        return 0.0
    se = np.maximum(sd / np.sqrt(np.maximum(n, 1)), CREST_SE_FLOOR)
    r = CREST_REACH
    pad = np.full((CREST_SECTORS, r), np.nan)
    win = np.lib.stride_tricks.sliding_window_view(np.hstack([pad, m, pad]), 2 * r + 1, axis=1)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: no crest there
        low = np.maximum(np.nanmin(win[..., :r], axis=2), np.nanmin(win[..., r + 1 :], axis=2))
        top = np.nanmax(win[..., r - 1 : r + 2], axis=2)
        z = np.where((n >= 5) & (m >= top), (m - low) / se, 0.0)
    return float(np.nan_to_num(z, nan=0.0).max())


def round_arcs(ring: Level, x: float, y: float) -> int:
    """How many arcs traced on the ring level are curved circles about frame point (x, y):
    the rms of each arc's distances to the point about their mean radius R at most TIE_RMS
    level px, and its sagitta about the point, R (1 - cos(span / 2)) for the angle it spans
    there, at least ROUND_BEND times that rms (its curvature measured to ~1 / ROUND_BEND).
    A nearly straight edge (a stop's side, a streak) is as round about every far point
    along its normal; a short arc's own noise bends it as much as the curvature asked."""
    rd = level_ridges(ring)
    if rd.count == 0:
        return 0
    c = ring.from_frame(x, y)
    radius, spread = arc_spread(rd, c)
    u, v = rd.x - c[0], rd.y - c[1]
    # angles about c relative to each arc's mean direction (no cut through an arc)
    mx = np.bincount(rd.label, u / np.maximum(np.hypot(u, v), 1e-12), rd.count)
    my = np.bincount(rd.label, v / np.maximum(np.hypot(u, v), 1e-12), rd.count)
    ref = np.arctan2(my, mx)[rd.label]
    ang = np.angle(np.exp(1j * (np.arctan2(v, u) - ref)))
    lo = np.full(rd.count, np.inf)
    hi = np.full(rd.count, -np.inf)
    np.minimum.at(lo, rd.label, ang)
    np.maximum.at(hi, rd.label, ang)
    sagitta = radius * (1.0 - np.cos(0.5 * (hi - lo)))
    bent = (spread <= TIE_RMS) & (sagitta >= ROUND_BEND * np.maximum(spread, ROUND_FLOOR))
    return int(np.count_nonzero(bent))


def round_arc(ring: Level, x: float, y: float) -> bool:
    """True if some arc traced on the ring level is a circle about frame point (x, y): the
    rms of its distances to the point about their mean at most TIE_RMS level px
    (:func:`scattertag.beam.rings.arc_spread`). A ring fit none of whose arcs is such a
    circle is a compromise between arcs about other points (a window's or a stop's edge,
    straight streaks, rings about the beam pulled by those): the centre of none of them."""
    rd = level_ridges(ring)
    if rd.count == 0:
        return False
    return bool((arc_spread(rd, ring.from_frame(x, y))[1] <= TIE_RMS).any())


def local_isotropy(ring: Level, x: float, y: float) -> float:
    """The share of the structure beyond the noise about frame point (x, y) that is radial,
    in [0, 1] (0 where noise explains all of it, NaN where too few ring-level pixels lie
    about it): the means m_sk of g per sector s (PIN_SECTORS) and radius bin k (one level
    pixel, out to PIN_REACH, at least 5 pixels; :func:`_radial`) split into a radial part,
    sum_k N_k (M_k - M)^2, and an azimuthal one, sum_sk n_sk (m_sk - M_k)^2 (M_k the bin's
    mean over its sectors), each in units of the bin's pixel variance (the lower median
    over its sectors) less its degrees of freedom (what noise alone gives):
    radial / (radial + azimuthal)."""
    n, m, sd = (a[:, : PIN_REACH + 1] for a in _radial(ring, x, y, PIN_SECTORS, PIN_REACH))
    use = (n >= 5) & np.isfinite(m)
    if np.count_nonzero(use) < 4:
        return math.nan
    w = np.where(use, n, 0).astype(np.float64)
    mm = np.where(use, m, 0.0)
    nk = w.sum(axis=0)
    k = nk > 0
    mk = (mm * w).sum(axis=0) / np.maximum(nk, 1.0)
    mid = np.maximum(np.count_nonzero(use, axis=0) - 1, 0) // 2  # the lower median's place
    var = np.sort(np.where(use, sd * sd, np.inf), axis=0)
    noise = np.where(k, np.maximum(np.take_along_axis(var, mid[None, :], 0)[0], 1e-12), 1.0)
    cells, bins = int(np.count_nonzero(use)), int(np.count_nonzero(k))
    across = max(float(((mm - mk) ** 2 * w / noise).sum()) - (cells - bins), 0.0)
    mean = float((mk * nk)[k].sum() / nk[k].sum())
    radial = max(float((nk * (mk - mean) ** 2 / noise)[k].sum()) - (bins - 1), 0.0)
    return radial / (radial + across) if radial + across > 0 else 0.0  # noise alone


def pinned(counts: np.ndarray, ok: np.ndarray, ring: Level, c: Candidate) -> bool:
    """True if the image pins candidate c's centre: it lies off the frame (nothing there to
    read), or the pattern about it is radial at the ring level (:func:`local_isotropy` at
    least PIN_ISOTROPY, or too few lit pixels to say), or a round spot at full resolution marks
    it (:func:`compact.spot`: the direct beam's, which block means wash out; a
    cosmic-ray track's middle is no such spot)."""
    if not on_frame(c.x, c.y, counts.shape):
        return True
    local = local_isotropy(ring, c.x, c.y)
    if not local < PIN_ISOTROPY:
        return True
    floor = dark_floor(ring.means[ring.ok])
    top = float(np.max(counts[ok]))
    e, use, r0, c0 = compact.window(counts, ok, top, floor, c.x, c.y)
    return compact.spot(e, use, c.x - c0, c.y - r0)


def _flat_run(n: np.ndarray, m: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ks, v, out) of a radial profile (n, m: (bins,) counts and means of g of b x b blocks):
    the bins with a mean, their means, and the indices into ks where the profile from the
    centre out spans more than max(PLATEAU_FLAT, 6 counting-noise standard errors: a block's
    var g = c / (b (1 + c))^2 for c counts a pixel, Poisson)."""
    ks = np.flatnonzero(np.isfinite(m))
    v = m[ks]
    c = np.expm1(v)
    se = np.sqrt(c / n[ks]) / (b * (1.0 + c))
    tol = np.maximum(PLATEAU_FLAT, 6.0 * np.maximum.accumulate(se))
    span = np.maximum.accumulate(v) - np.minimum.accumulate(v)
    return ks, v, np.flatnonzero(span > tol)


def plateau(ring: Level, x: float, y: float) -> float:
    """:func:`_plateau`, taken once a point and level (the give-up test's choice and the
    pinned choice ask it of the same candidates)."""
    return ring.kept(("plateau", x, y), lambda: _plateau(ring, x, y))


def _plateau(ring: Level, x: float, y: float) -> float:
    """The radius (ring-level px) of a bright flat top about frame point (x, y) bounded by a
    step down, 0 if there is none. From the centre out, the radial profile (one sector,
    :func:`_radial`) spans at most max(PLATEAU_FLAT, 6 counting-noise standard errors) over
    at least PLATEAU_MIN bins, the bin that ends the run lies below it, and within
    max(PLATEAU_EDGE of its radius, 3) bins the profile falls PLATEAU_STEP below the top's
    mean. A top at the frame's count limit (the highest g of the level, shared by 4 or more
    pixels, within PLATEAU_STEP) is clipping of the brightest scattering, not a plateau.
    Scattering about the beam falls from the centre or rises to rings: a falloff that is
    flat to radius R falls PLATEAU_STEP over more than R (Guinier, a sphere's form factor:
    1.45 R); a flat disk or square with a blurred edge (a window, an aperture: 0.02-0.1 R;
    a square's corners 0.07 R to half the step) is flat inside whatever its size, and its
    centre is its own, not the beam's."""
    n, m, _ = (a[0] for a in _radial(ring, x, y, reach=2 * PLATEAU_MIN))
    ks, v, out = _flat_run(n[: 2 * PLATEAU_MIN + 1], m[: 2 * PLATEAU_MIN + 1], ring.b)
    if out.size and out[0] < PLATEAU_MIN:
        return 0.0  # most profiles are not flat near the centre: decided on its bins alone
    n, m, _ = (a[0] for a in _radial(ring, x, y))
    ks, v, out = _flat_run(n, m, ring.b)
    if out.size == 0 or out[0] < PLATEAU_MIN or v[out[0]] > v[: out[0]].min():
        return 0.0  # flat to the last bin, too small, or rising: no step down
    top, end = float(v[: out[0]].mean()), int(ks[out[0]])
    edge = m[end : end + max(3, math.ceil(PLATEAU_EDGE * end)) + 1]
    if top - float(np.nanmin(edge)) < PLATEAU_STEP:
        return 0.0
    lit = ring.g[ring.lit]
    high = float(lit.max())
    if top >= high - PLATEAU_STEP and np.count_nonzero(lit == high) >= 4:
        return 0.0  # clipped at the count limit
    return float(end)
