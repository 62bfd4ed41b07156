"""The beam centre from a small, sharp feature about it: a compact peak or a small ring.

The pyramid's estimators read block means (up to 8 x 8 pixels on a 2000 px frame) of the
whole frame, where a feature a few pixels across weighs nothing against the rest: the
direct beam's attenuated spot or a leak through a semi-transparent stop, a small ring
(the first order of a calibrant, a window's ring) drawn about the beam at a wedge's tip.
At full resolution such a feature is point-symmetric about the beam: within a window of
half-side WINDOW px, the excess e of g = log(1 + counts) over its Gaussian smoothing
(BACKGROUND_SIGMA px), clipped at 0 (a stop's shadow is no centre), correlated with its
reflection through c (the same four FFT convolutions as the frame-wide point symmetry,
evaluated at s = 2c) peaks at the beam.

Seeds: the COMPACT_SEEDS brightest local maxima of the ring level's excess over its local
mean (a box of SEED_BOX frame pixels), at least SEED_EXCESS in g, and the core of a
saturated spot (:func:`saturated`). Each seed's window is centred on its symmetry peak and
searched again (a seed on a ring lies a radius away from its centre). The evidence of a
centre c:

* ``rho``: the correlation of the window's pairs (max(e, 0) at p and 2c - p),
* ``cover``: the share of COVER_SECTORS sectors about c (of those with pixels there) in
  which the feature's crest band (radii crest - 1 to crest + 1; a peak: out to its half
  width at half maximum) averages half the crest and SECTOR_SNR standard errors,
* ``contrast``: the crest (the highest 1 px bin of e's radial profile), in g, and the
  same over the noise of e away from the feature (``snr``),
* ``radius``: the crest's radius (0 for a spot, r for a ring or a flat or saturated top),
  ``size``: the pixels within crest + 3 px whose e reaches half the crest (a hot pixel or
  a zinger is 1-2).

:func:`confidence` finds a ring or a flat-topped peak about which the frame is about as
isotropic as about its best candidate; a spot whose crest is its middle (Bragg spots,
zingers, saturated defects and the direct beam with the stop moved out look alike) is
never found on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from scattertag.beam.gaussian import gaussian
from scattertag.beam.reflection import parabola, reflection_sums

#: How many seeds (local maxima of the ring level's excess) are searched.
COMPACT_SEEDS = 3
#: The box (frame px) over which a seed's local mean is taken, and the least excess (g).
SEED_BOX, SEED_EXCESS = 24, 0.7
#: Half-side of the full-resolution window about a seed or centre (frame px).
WINDOW = 40
#: Sectors about a centre, and the crest's least height in a sector over its noise.
COVER_SECTORS, SECTOR_SNR = 16, 3.0
#: The least overlap (fraction of the window's lit pixels) of a centre's reflection.
MIN_PAIRS = 0.3
#: The smoothing (px) whose excess a compact feature is (the kernel cut at 2 sigma).
BACKGROUND_SIGMA = 6.0
#: A feature about the beam: pairs correlated FOUND_RHO, seen in FOUND_COVER of the
#: sectors, FOUND_SNR times the noise, its crest at FOUND_RADIUS px or more (a ring, or a
#: peak with a flat top), and the frame about as isotropic about it as about its most
#: isotropic candidate (FOUND_ISOTROPY lower at most) and at least ISOTROPY_FLOOR (the
#: isotropy at which a centre's evidence is full: a dark frame is isotropic about nothing).
FOUND_RHO, FOUND_COVER, FOUND_SNR, FOUND_RADIUS = 0.8, 0.8, 6.0, 2.0
FOUND_ISOTROPY, ISOTROPY_FLOOR = 0.15, 0.12
#: A spot that marks a centre found otherwise (:func:`spot`): within SPOT_REACH px, at
#: least SPOT_PIXELS pixels reach half the highest excess there (a zinger is 1-4), spread
#: round (the square root of the ratio of their moments' eigenvalues at least SPOT_ROUND:
#: the direct beam's spot 0.8-0.9; a cosmic-ray track 0.05-0.08), FOUND_SNR times the noise.
SPOT_REACH, SPOT_PIXELS, SPOT_ROUND = 8.0, 5, 0.5


@dataclass(frozen=True)
class Compact:
    """A compact feature about frame point (x, y): its standard error sigma (px), the
    pairs' correlation rho, the sectors' cover (0-1), the crest's contrast (g) and its
    signal-to-noise ratio, its radius (px; 0 for a peak) and size (pixels above half)."""

    x: float
    y: float
    sigma: float
    rho: float
    cover: float
    contrast: float
    snr: float
    radius: float
    size: int


def seeds(
    g: np.ndarray, lit: np.ndarray, b: int, most: int = COMPACT_SEEDS
) -> list[tuple[float, float]]:
    """Frame (x, y) of up to ``most`` local maxima of g (R, C, a level of b x b blocks)
    over its local mean on the lit blocks (box SEED_BOX / b, at least 3), each at least
    SEED_EXCESS, brightest first, no two within the box."""
    k = max(3, round(SEED_BOX / b) | 1)
    m = lit.astype(np.float64)
    mean = ndimage.uniform_filter(g * m, k) / np.maximum(ndimage.uniform_filter(m, k), 1e-9)
    e = np.where(lit, g - mean, -np.inf)
    top = ndimage.maximum_filter(e, k)
    iy, ix = np.nonzero((e == top) & (e >= SEED_EXCESS))
    off = (b - 1) / 2
    out: list[tuple[float, float]] = []
    for i in np.argsort(-e[iy, ix]):
        x, y = float(ix[i] * b + off), float(iy[i] * b + off)
        if all(max(abs(x - u), abs(y - v)) > k * b for u, v in out):
            out.append((x, y))
        if len(out) == most:
            break
    return out


def saturated(counts: np.ndarray, ok: np.ndarray, top: float) -> list[tuple[float, float]]:
    """Frame (x, y) of the mean of the pixels at the count limit ``top`` that the validity
    test dropped within WINDOW / 4 of their median point (a saturated spot's core), or
    nothing when none was dropped."""
    idx = np.flatnonzero(counts.ravel() == top)
    idx = idx[~ok.ravel()[idx]]
    if idx.size == 0:
        return []
    iy, ix = np.divmod(idx, counts.shape[1])
    my, mx = np.median(iy), np.median(ix)
    near = np.maximum(np.abs(iy - my), np.abs(ix - mx)) <= WINDOW / 4
    if not near.any():
        return []
    return [(float(ix[near].mean()), float(iy[near].mean()))]


def window(
    counts: np.ndarray,
    ok: np.ndarray,
    top: float,
    floor: float,
    x: float,
    y: float,
    h: int = WINDOW,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(e, use, r0, c0): the excess of g = log(1 + counts) over its Gaussian smoothing
    (BACKGROUND_SIGMA px over the used pixels) in the frame's window of half-side h about
    (x, y) (clipped to the frame), which pixels are used (valid and above the shadows'
    ``floor`` in counts, or at the count limit ``top``: a saturated core is part of the
    feature), and the window's first row and column."""
    rows, cols = counts.shape
    i, j = round(y), round(x)
    r0, c0 = max(i - h, 0), max(j - h, 0)
    r1, c1 = min(i + h + 1, rows), min(j + h + 1, cols)
    c = np.asarray(counts[r0:r1, c0:c1], dtype=np.float64)
    use = (ok[r0:r1, c0:c1] & (c >= floor)) | (c >= top)
    g = np.where(use, np.log1p(np.clip(c, 0.0, None)), 0.0)
    m = use.astype(np.float64)
    bg = gaussian(g, BACKGROUND_SIGMA, truncate=2.0) / np.maximum(
        gaussian(m, BACKGROUND_SIGMA, truncate=2.0), 1e-9
    )
    return np.where(use, g - bg, 0.0), use, r0, c0


def symmetry_peak(g: np.ndarray, use: np.ndarray) -> tuple[float, float, float]:
    """(x, y, rho) window px: the centre c about which the pairs (g(p), g(2c - p)) of the
    used pixels correlate best (masked normalised correlation via FFT, s = 2c), among the
    centres whose pairs cover MIN_PAIRS of the used pixels; sub-pixel by parabolas."""
    m = use.astype(np.float64)
    g = np.maximum(g, 0.0)  # the bright features only: a stop's shadow is no centre
    n, s1, s2, s12 = reflection_sums(g, m)
    enough = n >= max(MIN_PAIRS * m.sum(), 16.0)
    mean_sq = np.where(enough, s1 * s1 / np.maximum(n, 1.0), 0.0)
    var = s2 - mean_sq
    rho = np.where(enough & (var > 1e-9), (s12 - mean_sq) / np.maximum(var, 1e-300), -np.inf)
    i, j = np.unravel_index(int(np.argmax(rho)), rho.shape)
    if not np.isfinite(rho[i, j]):
        return math.nan, math.nan, 0.0
    di, dj = parabola(rho, int(i), int(j), 0), parabola(rho, int(i), int(j), 1)
    return (j + dj) / 2.0, (i + di) / 2.0, float(rho[i, j])


def evidence(
    e: np.ndarray, use: np.ndarray, cx: float, cy: float
) -> tuple[float, float, float, float, int]:
    """(cover, contrast, snr, radius, size) of the feature about window point (cx, cy) in
    the excess e (:func:`window`): the crest is the highest bin (1 px) of the radial
    profile within 3/4 of the window's inscribed radius; the background noise the robust
    spread of e beyond twice the crest's radius plus 3 px; a sector (of those with pixels
    there) sees the feature when its mean e over radii crest - 1 to crest + 1 (a peak: 0 to
    its half width at half maximum, at least 1.5 px) reaches half the crest and SECTOR_SNR
    standard errors of that mean; size: pixels within crest + 3 px whose e reaches half
    the crest."""
    iy, ix = np.nonzero(use)
    dx, dy = ix - cx, iy - cy
    r = np.hypot(dx, dy)
    reach = min(cx, cy, e.shape[1] - 1 - cx, e.shape[0] - 1 - cy)
    if reach < 6:
        return 0.0, 0.0, 0.0, 0.0, 0
    v = e[iy, ix]
    inside = r <= reach
    k = r[inside].astype(np.intp)
    prof = np.bincount(k, v[inside]) / np.maximum(np.bincount(k), 1)
    crest = int(np.argmax(prof[: max(3, int(reach * 0.75))]))
    far = v[inside & (r > 2.0 * crest + 3.0)]
    if far.size < 16:
        return 0.0, 0.0, 0.0, float(crest), 0
    noise = 1.4826 * float(np.median(np.abs(far - np.median(far)))) + 1e-3
    height = float(prof[crest])
    below = np.flatnonzero(prof[crest:] < 0.5 * height)
    half = float(below[0]) if below.size else 1.0  # a peak's half width at half maximum
    band = inside & (r >= max(crest - 1, 0)) & (r <= max(crest + 1, half, 1.5))
    sector = ((np.arctan2(dy, dx) + math.pi) * (COVER_SECTORS / (2 * math.pi))).astype(np.intp)
    sector = np.minimum(sector, COVER_SECTORS - 1)[band]
    nb = np.bincount(sector, minlength=COVER_SECTORS)
    mb = np.bincount(sector, v[band], minlength=COVER_SECTORS) / np.maximum(nb, 1)
    seen = (nb > 0) & (mb >= 0.5 * height)
    seen &= mb >= SECTOR_SNR * noise / np.sqrt(np.maximum(nb, 1))
    size = int(np.count_nonzero(inside & (r <= crest + 3) & (v >= 0.5 * height)))
    cover = float(seen.sum() / max(np.count_nonzero(nb), 1))
    return cover, height, height / noise, float(crest), size


def roundness(e: np.ndarray, use: np.ndarray, cx: float, cy: float) -> tuple[float, int]:
    """(ratio, pixels): of the used pixels within SPOT_REACH px of window point (cx, cy)
    whose excess e reaches half the highest there, how many, and sqrt(l_min / l_max) of the
    eigenvalues of their e-weighted second moments (1 round, 0 a line)."""
    iy, ix = np.nonzero(use)
    dx, dy = ix - cx, iy - cy
    near = np.hypot(dx, dy) <= SPOT_REACH
    if not near.any():
        return 0.0, 0
    v = e[iy, ix]
    sel = near & (v >= 0.5 * float(v[near].max())) & (v > 0)
    count = int(np.count_nonzero(sel))
    if count < 3:
        return 0.0, count
    w = v[sel] / v[sel].sum()
    x, y = dx[sel], dy[sel]
    x, y = x - (w * x).sum(), y - (w * y).sum()
    low, high = np.linalg.eigvalsh(
        [[(w * x * x).sum(), (w * x * y).sum()], [(w * x * y).sum(), (w * y * y).sum()]]
    )
    return math.sqrt(max(float(low), 0.0) / max(float(high), 1e-12)), count


def spot(e: np.ndarray, use: np.ndarray, cx: float, cy: float) -> bool:
    """True if a round spot marks window point (cx, cy) of the excess e (:func:`window`):
    FOUND_SNR times the noise (:func:`evidence`), at least SPOT_PIXELS pixels above half
    its height, SPOT_ROUND round (:func:`roundness`)."""
    snr = evidence(e, use, cx, cy)[2]
    ratio, count = roundness(e, use, cx, cy)
    return snr >= FOUND_SNR and count >= SPOT_PIXELS and ratio >= SPOT_ROUND


def confidence(c: Compact, isotropy: float, best: float) -> float:
    """Confidence of a feature ``c`` whose fine-level isotropy is ``isotropy`` on a frame
    whose most isotropic candidate has ``best``: 0.7 x cover (one estimator, its evidence
    how much of the circle shows) when the feature is about the beam (FOUND_*), else 0.
    A spot whose crest is its middle (a Bragg spot, a zinger, a defect, the direct beam
    with the stop moved out: nothing in it says which) is never found on its own."""
    if (
        c.rho >= FOUND_RHO
        and c.cover >= FOUND_COVER
        and c.snr >= FOUND_SNR
        and c.radius >= FOUND_RADIUS
        and c.size >= 5
        and isotropy >= max(best - FOUND_ISOTROPY, ISOTROPY_FLOOR)
    ):
        return 0.7 * c.cover
    return 0.0


def starts(
    counts: np.ndarray, ok: np.ndarray, g: np.ndarray, lit: np.ndarray, b: int
) -> tuple[float, list[tuple[float, float]]]:
    """(top, points): the frame's largest count and the frame (x, y) where :func:`find`
    starts, its saturated cores (:func:`saturated`) then the seeds of its ring level
    (:func:`seeds`; g, lit: (R, C) of b x b blocks)."""
    top = float(np.max(counts))
    return top, saturated(counts, ok, top) + seeds(g, lit, b)


def find(
    counts: np.ndarray,
    ok: np.ndarray,
    g: np.ndarray,
    lit: np.ndarray,
    b: int,
    floor: float,
    begun: tuple[float, list[tuple[float, float]]] | None = None,
) -> list[Compact]:
    """The compact features of a frame (:class:`Compact`, frame px), from the seeds of its
    ring level (g, lit: (R, C) of b x b blocks) and its saturated cores; each seed's
    window re-centred once on its symmetry peak. ``floor``: counts under which a pixel is
    in a beamstop's shadow; ``begun``: :func:`starts` of the frame where a caller has it."""
    top, points = starts(counts, ok, g, lit, b) if begun is None else begun
    out: list[Compact] = []
    for sx, sy in points:
        x, y, rho, moved = sx, sy, 0.0, math.inf
        for _ in range(2):
            w, use, r0, c0 = window(counts, ok, top, floor, x, y)
            px, py, rho = symmetry_peak(w, use)
            if not math.isfinite(px):
                break
            moved = math.hypot(px + c0 - x, py + r0 - y)
            x, y = px + c0, py + r0
            if moved <= 1.0:  # the window was centred on it: no second pass
                break
        if math.isfinite(x) and math.isfinite(rho) and rho > 0:
            if moved > 1.0:
                w, use, r0, c0 = window(counts, ok, top, floor, x, y)
            cover, contrast, snr, radius, size = evidence(w, use, x - c0, y - r0)
            out.append(Compact(x, y, 0.5, rho, cover, contrast, snr, radius, size))
    return out
