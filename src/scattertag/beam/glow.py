"""The beam centre from the direct beam's glow beside a rod beamstop that crosses it.

A rod or bar beamstop held from beyond the beam hides the direct beam, but not all of its
halo: the attenuated beam and what the slits and windows scatter about it leak out on
either side of the rod, a glow that is brightest where the rod's edges pass closest to
the beam and fades away from the rod. Along a line parallel to the rod's axis at offset
s, a halo I(r) that decreases with the distance r from the beam peaks at the foot of the
perpendicular from the beam: the glow's peak along the rod's two edges gives the beam's
position along the axis, and the mirror symmetry of the glow across the rod gives its
position across it (the rod need not be centred on the beam). Grazing-incidence frames
are the case in point: the specular column is behind the rod, so neither the specular
spot nor the horizon on it fixes y (:func:`scattertag.beam.grazing.grazing_candidate`).

A glow is accepted only when it stands out on both sides of the rod at the same place
(GLOW_CONTRAST in log(1 + counts) over the running median along the edge, and GLOW_SNR
times the edge profile's noise) and fades away from the rod (its excess on lines farther
out is at least GLOW_FADE lower than at the edge, counts above the background falling by
e: a horizontal band, the Yoneda band or a ring crossing the rod is as bright away from
the rod as beside it). Otherwise no centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from scattertag.beam.shadow import Shadows, largest_shadows

#: The glow's peak exceeds the running median along each edge by this much in log(1 + counts)
#: and GLOW_SNR times the edge profile's noise.
GLOW_CONTRAST, GLOW_SNR = 1.0, 8.0
#: Its excess on the lines GLOW_OUT rod half-widths farther out is at least GLOW_FADE lower.
GLOW_FADE, GLOW_OUT = 1.0, 2.0
#: A rod: a shadow at least ROD_ASPECT times as long as it is wide, of at least 6 blocks.
ROD_ASPECT = 3.0
#: The running median along an edge reaches GLOW_WINDOW of the frame's longer side (and at
#: least 4 rod half-widths) to each side.
GLOW_WINDOW = 0.03
#: A row or column zero over this fraction of the frame is a detector gap.
GAP_SPAN = 0.95
#: The glow's middle moves at most GLOW_SHIFT px (or half its full width at half maximum)
#: along the rod from the edge lines to the lines GLOW_OUT half-widths farther out.
GLOW_SHIFT = 2.0
#: Excess given to unknown samples of an edge (no valid pixel): never a peak.
UNKNOWN = -1e3


@dataclass(frozen=True)
class Rod:
    """A long shadow in frame pixels: a point (x, y) on its axis, the unit vector along the
    axis (ux, uy), its half-width and the extent [t0, t1] of its blocks along the axis."""

    x: float
    y: float
    ux: float
    uy: float
    half_width: float
    t0: float
    t1: float

    def point(self, t: np.ndarray | float, s: np.ndarray | float) -> tuple:
        """Frame (x, y) of the point t along the axis and s across it (normal (-uy, ux))."""
        return self.x + t * self.ux - s * self.uy, self.y + t * self.uy + s * self.ux


@dataclass(frozen=True)
class Glow:
    """The beam found from a rod's glow: (x, y) frame pixels, standard error sigma (px),
    the glow's contrast (the smaller of the two edges' excess, log(1 + counts))."""

    x: float
    y: float
    sigma: float
    contrast: float


def gap_lines(counts: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """(rows, cols) bool: the rows and columns whose valid pixels are zero over GAP_SPAN of
    the frame's width or height: gaps between detector modules stored as zeros, not
    marked invalid (a beamstop passes a leak; a gap counts nothing across the frame)."""
    zero = ok & (counts == 0)
    out = np.zeros(ok.shape, dtype=bool)
    out[zero.mean(axis=1) >= GAP_SPAN, :] = True
    out[:, zero.mean(axis=0) >= GAP_SPAN] = True
    return out


def rods(shadows: Shadows, most: int = 3) -> list[Rod]:
    """The long shadows among the ``most`` largest of :func:`find_shadows`'s shadows.

    Axis by PCA of the shadow's block centres (:func:`largest_shadows`); half-width half
    the 2.5-97.5 % range of the blocks across the axis plus half a block; kept if the
    shadow is ROD_ASPECT times as long as wide.
    """
    b = shadows.b
    out = []
    for iy, ix, v in largest_shadows(shadows, most):
        x, y = b * ix + (b - 1) / 2, b * iy + (b - 1) / 2
        mx, my = float(x.mean()), float(y.mean())
        along = (x - mx) * v[0] + (y - my) * v[1]
        across = (y - my) * v[0] - (x - mx) * v[1]
        lo, mid, hi = np.percentile(across, [2.5, 50.0, 97.5])
        half = 0.5 * float(hi - lo) + 0.5 * b
        t0, t1 = float(along.min()), float(along.max())
        if t1 - t0 + b < ROD_ASPECT * 2.0 * half:
            continue
        cx, cy = mx - float(mid) * v[1], my + float(mid) * v[0]
        out.append(Rod(cx, cy, float(v[0]), float(v[1]), half, t0, t1))
    return out


def _mean_counts(
    counts: np.ndarray, ok: np.ndarray, rod: Rod, t: np.ndarray, s: np.ndarray, axis: int
) -> np.ndarray:
    """log(1 + mean counts) of the valid pixels nearest the points t along the rod and s
    across it (broadcast together), the mean taken along ``axis``; NaN where none is valid
    or on the frame."""
    rows, cols = counts.shape
    px, py = rod.point(t, s)
    c, r = np.rint(px).astype(np.intp), np.rint(py).astype(np.intp)
    on = (c >= 0) & (c < cols) & (r >= 0) & (r < rows)
    use = np.zeros(c.shape, dtype=bool)
    use[on] = ok[r[on], c[on]]
    total = np.zeros(c.shape)
    total[use] = np.maximum(counts[r[use], c[use]], 0)
    n = use.sum(axis=axis)
    return np.where(n > 0, np.log1p(total.sum(axis=axis) / np.maximum(n, 1)), np.nan)


def _line(counts: np.ndarray, ok: np.ndarray, rod: Rod, t: np.ndarray, s: float) -> np.ndarray:
    """(T,) log(1 + mean counts) of the valid pixels nearest the points t along the rod at
    offsets s - 1, s, s + 1 across it; NaN where none is valid or on the frame."""
    return _mean_counts(counts, ok, rod, t[None, :], s + np.array([[-1.0], [0.0], [1.0]]), 0)


def _excess(profile: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """(excess, base): a profile (NaN where unknown) less its running median over +-reach
    samples (NaN gaps interpolated for the median), NaN where the profile is."""
    known = np.isfinite(profile)
    idx = np.arange(profile.size)
    filled = np.interp(idx, idx[known], profile[known])
    base = ndimage.median_filter(filled, size=2 * reach + 1, mode="nearest")
    return np.where(known, profile - base, np.nan), base


def _noise(profile: np.ndarray) -> float:
    """Robust standard deviation of a profile's sample-to-sample noise (1.4826 MAD of the
    differences / sqrt 2)."""
    d = np.diff(profile[np.isfinite(profile)])
    if d.size < 4:
        return math.inf
    return 1.4826 * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2.0)


def _finite_mean(a: np.ndarray) -> float:
    """Mean of the finite values of ``a``, NaN if none."""
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else math.nan


def _half_max(lin: np.ndarray, i: int) -> tuple[float, float]:
    """(middle, width) of the run about index i where ``lin`` (counts above the background)
    stays above half its maximum near i, the crossings interpolated between samples."""
    top = float(np.nanmax(lin[max(i - 1, 0) : i + 2]))
    half = 0.5 * top
    lo = i
    while lo > 0 and np.isfinite(lin[lo - 1]) and lin[lo - 1] >= half:
        lo -= 1
    hi = i
    while hi < lin.size - 1 and np.isfinite(lin[hi + 1]) and lin[hi + 1] >= half:
        hi += 1
    a = lo - 1 + (half - lin[lo - 1]) / (lin[lo] - lin[lo - 1]) if lo > 0 else float(lo)
    b = hi + (lin[hi] - half) / (lin[hi] - lin[hi + 1]) if hi < lin.size - 1 else float(hi)
    if not (math.isfinite(a) and math.isfinite(b)):
        return float(i), 1.0
    return 0.5 * (a + b), float(b - a)


def _mirror(across: np.ndarray, s: np.ndarray, inner: float, limit: float) -> float:
    """Offset c (|c| <= limit) about which the profile ``across`` (at offsets s, NaN where
    unknown) is most mirror-symmetric: least mean squared difference of g(c - d) and
    g(c + d) over the pairs outside +-inner (linear interpolation); NaN if too few pairs."""
    known = np.isfinite(across) & (np.abs(s) >= inner)
    sk, gk = s[known], across[known]
    if np.count_nonzero(sk < 0) < 4 or np.count_nonzero(sk > 0) < 4:
        return math.nan
    left, right = sk < 0, sk > 0
    sl, gl, sr, gr = sk[left], gk[left], sk[right], gk[right]
    cs = np.arange(-limit, limit + 1e-9, 0.25)
    mirrored = 2.0 * cs[:, None] - sr[None, :]  # (C, R) the right side mirrored onto the left
    inside = (mirrored >= sl.min()) & (mirrored <= sl.max())
    diff = np.interp(mirrored.ravel(), sl, gl).reshape(mirrored.shape) - gr[None, :]
    n = inside.sum(axis=1)
    cost = np.where(
        n >= 4, (np.where(inside, diff, 0.0) ** 2).sum(axis=1) / np.maximum(n, 1), np.inf
    )
    return float(cs[int(np.argmin(cost))]) if np.isfinite(cost).any() else math.nan


def _edge_peak(
    counts: np.ndarray, ok: np.ndarray, rod: Rod, t: np.ndarray, s: float, reach: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """(excess, counts above the background, noise) along the line at offset s."""
    p = _line(counts, ok, rod, t, s)
    if np.count_nonzero(np.isfinite(p)) < 2 * reach:
        nan = np.full(t.size, np.nan)
        return nan, nan, math.inf
    e, base = _excess(p, reach)
    return e, np.expm1(p) - np.expm1(base), _noise(p)


def glow_of(counts: np.ndarray, ok: np.ndarray, rod: Rod) -> Glow | None:
    """The beam from the glow beside ``rod`` (:class:`Glow`), or None when no glow stands
    out on both sides at the same place and fades away from the rod.

    Edges: lines at s = +-(half-width + 2 px) across the axis, sampled every pixel along
    it from the rod's extent less and more the running median's reach (3 px wide, valid
    pixels only). The peak: the largest sum of the two edges' excess (3-sample mean); each
    edge's own excess there at least GLOW_CONTRAST and GLOW_SNR times its noise; within
    the rod's extent less a half-width at either end (the beam is behind the rod); on the
    lines GLOW_OUT half-widths farther out still above the background but at least
    GLOW_FADE lower, and its middle (below) there within max(GLOW_SHIFT, half the full
    width at half maximum) of that at the edges (a ring about the beam crosses lines
    farther out nearer the beam). Along the axis: each edge's middle of the glow's full
    width at half maximum in counts above the background; the beam at their mean, their
    half-difference its spread. Across: the mirror point of the mean profile across the
    rod over the rows within the glow's half maximum (:func:`_mirror`), within the rod;
    the two halves of those rows give its spread.
    """
    rows, cols = counts.shape
    half = rod.half_width
    reach = max(int(GLOW_WINDOW * max(rows, cols)), int(4 * half), 8)
    t = np.arange(math.floor(rod.t0 - reach), math.ceil(rod.t1 + reach) + 1, dtype=np.float64)
    s_in = half + 2.0
    s_out = s_in + GLOW_OUT * half
    edges = [_edge_peak(counts, ok, rod, t, sign * s_in, reach) for sign in (-1.0, 1.0)]
    if any(not np.isfinite(noise) for _, _, noise in edges):
        return None
    smooth = [
        np.convolve(np.nan_to_num(e, nan=UNKNOWN), np.ones(3) / 3, "same") for e, _, _ in edges
    ]
    i = int(np.argmax(smooth[0] + smooth[1]))
    if i < 2 or i > t.size - 3:
        return None  # at the end of the sampled range: no peak
    contrast = min(float(sm[i]) for sm in smooth)
    if any(
        sm[i] < max(GLOW_CONTRAST, GLOW_SNR * noise) for sm, (_, _, noise) in zip(smooth, edges)
    ):
        return None
    if not rod.t0 + half <= t[i] <= rod.t1 - half:
        return None  # not beside the rod: the beam is not behind it
    far = [_edge_peak(counts, ok, rod, t, sign * s_out, reach) for sign in (-1.0, 1.0)]
    for sm, (e, lin, _) in zip(smooth, far):
        e_i = _finite_mean(e[i - 1 : i + 2])
        if not (math.isfinite(e_i) and e_i <= sm[i] - GLOW_FADE and lin[i] > 0):
            return None  # not fainter farther out, or not seen there at all
    (mid0, fwhm0), (mid1, fwhm1) = (_half_max(lin, i) for _, lin, _ in edges)
    moved = 0.5 * sum(_half_max(lin, i)[0] for _, lin, _ in far) - 0.5 * (mid0 + mid1)
    if not abs(moved) <= max(GLOW_SHIFT, 0.25 * (fwhm0 + fwhm1)):
        return None  # a ring crossing the edges moves along them, a glow about the beam stays
    mids = (mid0, mid1)
    t_beam = float(t[0]) + 0.5 * (mids[0] + mids[1])
    spread_t = max(0.5 * abs(mids[0] - mids[1]), 0.5)
    # across: the glow's rows within its half maximum, mirror point of the mean profile
    lin = np.nan_to_num(0.5 * (edges[0][1] + edges[1][1]), nan=-np.inf)
    lo, hi = i, i
    while lo > max(i - reach, 0) and lin[lo - 1] >= 0.5 * lin[i]:
        lo -= 1
    while hi < min(i + reach, t.size - 1) and lin[hi + 1] >= 0.5 * lin[i]:
        hi += 1
    band = np.arange(lo, hi + 1)
    s = np.arange(-math.ceil(s_out), math.ceil(s_out) + 1, dtype=np.float64)
    halves = (band[: max(band.size // 2, 1)], band[band.size // 2 :]) if band.size > 1 else (band,)
    offsets = [
        _mirror(_mean_counts(counts, ok, rod, t[part][None, :], s[:, None], 1), s, s_in, half)
        for part in (band, *halves)
    ]
    c = offsets[0]
    if not math.isfinite(c):
        return None
    spread_s = (
        max(0.5 * abs(offsets[1] - offsets[2]), 0.25)
        if len(offsets) == 3 and math.isfinite(offsets[1] + offsets[2])
        else half
    )
    x, y = rod.point(t_beam, c)
    return Glow(float(x), float(y), math.hypot(spread_t, spread_s), contrast)
