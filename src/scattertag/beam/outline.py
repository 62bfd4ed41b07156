"""The beam centre from a bar's round end fitted to the counts themselves.

:func:`scattertag.beam.bars.bar_tips` traces the crests of the edge's gradient and fits
the outline through them. A crest needs an edge that stands out pixel by pixel: where the
light over an integrating detector's offset is a few counts against a read noise of tens,
where the edge blurs over the bar's width (a thin rod), or where a module gap cuts the tip,
the crests scatter or vanish. Every pixel about the tip still carries the shadow, so here
the block means about it are fitted at once with the stop as drawn: a bar of half-width
r + k a (a the distance along its axis; k = 0 for a bar) along an axis at angle t from
(cx, cy), ending in a half disk of radius r about (cx, cy) (the beam), its outline
blurred,

    m = L (1 - s) + s (h0 + h1 u + h2 v),   s = (1 + tanh(d / w)) / 2,

d the signed distance to the outline (:func:`_distance`), w the blur, L the level behind
the stop (offset and leak), the light a plane over the window (u, v its coordinates).
L, h0, h1, h2 are linear: eliminated by least squares for each (cx, cy, t, r, k, log w)
(variable projection, with Kaufman's Jacobian), which a soft-L1 least squares fits from
the shadow's tip, first over coarse blocks (a screen), then finer. The fit pins the beam
(:func:`pins`) when its centre's standard error is at most MAX_SIGMA, the shadow stands out
of the noise (CHI_SHADOW), the sides keep their width (a wedge's point does not fix the
beam along its axis: MAX_TAPER) and a straight end (a paddle's box, whose beam the end
does not fix) fits clearly worse (CHI_ROUND).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from scattertag.beam import least_squares
from scattertag.beam.grid import block_sums
from scattertag.beam.order_stats import median

#: The screening fit: blocks of at most SCREEN_BLOCKS a side; a standard error of at most
#: SCREEN_SIGMA px (:func:`_screened`).
SCREEN_BLOCKS, SCREEN_SIGMA = 24, 1.0
#: A start worth screening (:func:`_promising`): the outline as started (at the start, the
#: start's half-width, no taper) darker than the light by at least START_CONTRAST times the
#: noise and explaining the window better than the light alone (chi^2 gained > 0). On the
#: 3793 starts of every cached frame of seeds 0, 1, 3 and 4 this passes 52 % of them and
#: all 53 whose fit pins the beam (least contrast there 3.4, least gain 296). Since
#: 2 Dec, session 13, it must also explain the window better than the same bar running on
#: through it (no end there, :func:`_endless`): a fit from an end the window does not show
#: returned no beam on the cached frames of seeds 0, 1, 3, 4 and 5 (lab notebook).
START_CONTRAST = 1.0
#: Most residual evaluations of a fit (:func:`scattertag.beam.least_squares.solve`).
MAX_NFEV = 30
#: Largest standard error (frame px) of a kept centre.
MAX_SIGMA = 0.25
#: Most blocks along a side of the fitted window.
MAX_BLOCKS = 48
#: The window: TIP_LENGTH half-widths of the bar behind its tip's centre, and TIP_MARGIN
#: half-widths (at least MIN_MARGIN px) of light about the outline.
TIP_LENGTH, TIP_MARGIN, MIN_MARGIN = 3.0, 2.0, 8.0
#: The shadow stands out: the fit's chi^2 below that of the light alone (a plane) by at
#: least this (in units of the residuals' variance).
CHI_SHADOW = 100.0
#: Sides of constant width: the fitted taper (half-width gained per px along the axis) plus
#: TAPER_Z of its standard errors at most MAX_TAPER (a wedge whose sides open by 1 degree
#: each tapers by 0.017; its point does not fix the beam).
TAPER_Z, MAX_TAPER = 2.0, 0.02
#: A round end: its chi^2 below a straight end's (the same fit, a paddle's box) by at least
#: this.
CHI_ROUND = 25.0
#: A round end of radius r and a straight one r behind its centre differ by two corners of
#: (2 - pi / 2) r^2 together: under one block of the fitted window (r under 1.53 blocks) the
#: counts cannot tell them apart, and both put the centre r inside the end (within
#: (1 - pi / 4) r, 0.3 blocks, of each other).
CORNERS = 2.0 - 0.5 * math.pi
#: ... such an end is kept only where valid pixels cover at least this fraction of the
#: square ahead of it (a side of the window's margin about the outline): an end seen in the
#: light, not a rod running into a mask or off the frame.
AHEAD = 0.5


@dataclass(frozen=True)
class OutlineTip:
    """A bar's round end fitted to the counts, frame px: (x, y) the half disk's centre (the
    beam), ``angle`` (radians) of the axis into the bar, ``half_width``, ``blur`` (the
    tanh's scale), ``sigma`` the centre's standard error, ``shadow`` and ``round`` the
    chi^2 gained over the light alone and over a straight end (inf when not fitted: the
    rest does not pin the beam; nan where the end is too thin to tell one, :func:`unresolved`),
    ``taper`` (half-width gained per px along the axis) and
    its standard error, ``contrast`` the light less the level behind the stop at the
    window's middle, in units of the noise, ``misfit`` the residuals' rms in units of the
    noise (the standard errors are scaled by it where over 1), ``block`` the fitted
    window's block size (frame px), ``ahead`` the fraction of the square ahead of the end
    that is valid (:func:`_ahead`)."""

    x: float
    y: float
    angle: float
    half_width: float
    taper: float
    taper_sigma: float
    blur: float
    sigma: float
    shadow: float
    round: float
    contrast: float
    misfit: float
    block: int = 1
    ahead: float = 1.0


@dataclass(frozen=True)
class _Blocks:
    """Block means m (N,) of a window, their frame coordinates x, y and weights n (valid
    pixels a block), u, v the coordinates scaled to [-1, 1] over the window; b x b pixels
    a block."""

    b: int
    m: np.ndarray
    x: np.ndarray
    y: np.ndarray
    n: np.ndarray
    u: np.ndarray
    v: np.ndarray


def _window(
    counts: np.ndarray, ok: np.ndarray, mid: tuple[float, float], half: float, most: int
) -> _Blocks | None:
    """The valid blocks (at least half valid) of the window of +-``half`` px about ``mid``,
    at the finest block size that keeps it within ``most`` blocks a side; None when under 64."""
    rows, cols = counts.shape
    x0, x1 = max(0, int(mid[0] - half)), min(cols, int(mid[0] + half) + 1)
    y0, y1 = max(0, int(mid[1] - half)), min(rows, int(mid[1] + half) + 1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    b = 1
    while max(x1 - x0, y1 - y0) / b > most:
        b *= 2
    m = ok[y0:y1, x0:x1]
    c = np.where(m, counts[y0:y1, x0:x1], 0).astype(np.float64)
    s, n = block_sums(c, b), block_sums(m, b)
    use = n >= 0.5 * b * b
    if use.sum() < 64:
        return None
    iy, ix = np.nonzero(use)
    x = x0 + b * ix + (b - 1) / 2
    y = y0 + b * iy + (b - 1) / 2
    return _Blocks(b, s[use] / n[use], x, y, n[use], (x - mid[0]) / half, (y - mid[1]) / half)


def _projected(blk: _Blocks, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(residuals, coefficients, basis): sqrt(n) (m - A c) for the least-squares c of the
    basis A = [1 - s, s, s u, s v] (4, N) (the level behind the stop, the light's plane)."""
    a = np.stack([1.0 - s, s, s * blk.u, s * blk.v])
    aw = a * blk.n
    try:  # the 4 x 4 normal equations: ~10x faster than an SVD of the (N, 4) basis
        coef = np.linalg.solve(aw @ a.T, aw @ blk.m)
    except np.linalg.LinAlgError:
        coef = np.linalg.lstsq(a.T * np.sqrt(blk.n)[:, None], blk.m * np.sqrt(blk.n), rcond=None)[0]
    return np.sqrt(blk.n) * (blk.m - coef @ a), coef, a


def _chi2(r: np.ndarray, scale: float) -> float:
    """Soft-L1 chi^2 of residuals r in units of ``scale``: sum 2 (sqrt(1 + z^2) - 1)."""
    z = r / scale
    return float(np.sum(2.0 * (np.sqrt(1.0 + z * z) - 1.0)))


def _noise(blk: _Blocks) -> float:
    """Robust standard deviation of sqrt(n) m between neighbouring blocks in the list
    (the window's rows): the residual scale of a good fit."""
    r = np.sqrt(blk.n) * blk.m
    d = np.diff(r)[np.diff(blk.y) == 0]
    return 1.4826 * median(np.abs(d - median(d))) / math.sqrt(2.0) if d.size >= 16 else 0.0


def _distance(
    x: np.ndarray, y: np.ndarray, p: np.ndarray, flat: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(d, jac): signed distance (px, negative inside) of points (x, y) to a bar's outline
    and its derivatives (5, N) in p = (cx, cy, t, r, k, ...): sides at half-width
    r + k a along the axis at angle t from (cx, cy) (a = the distance along it; k > 0 a
    wedge opening), ending in a half disk of radius r about (cx, cy), or with ``flat`` in a
    straight end r behind it (a paddle's box)."""
    cx, cy, t, r, k = p[:5]
    ux, uy = math.cos(t), math.sin(t)
    qx, qy = x - cx, y - cy
    along = qx * ux + qy * uy
    across = qx * uy - qy * ux
    sg = np.where(across >= 0.0, 1.0, -1.0)
    ahead = along >= 0.0
    kk = np.where(ahead, k, 0.0)
    side = np.abs(across) - r - kk * along
    ones = np.ones_like(along)
    side_jac = (
        -sg * uy + kk * ux,
        sg * ux + kk * uy,
        sg * along + kk * across,
        -ones,
        -np.maximum(along, 0.0),
    )
    if flat:
        use = side >= -(along + r)
        end_jac = (ux * ones, uy * ones, across, -ones, 0.0 * ones)
        d = np.where(use, side, -(along + r))
    else:
        use = ahead
        q = np.maximum(np.hypot(qx, qy), 1e-9)
        end_jac = (-qx / q, -qy / q, 0.0 * ones, -ones, 0.0 * ones)
        d = np.where(use, side, q - r)
    return d, np.stack([np.where(use, a, b) for a, b in zip(side_jac, end_jac)])


def _model(blk: _Blocks, p: np.ndarray, flat: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(residuals, Jacobian (N, 6), coefficients) of the bar's outline p = (cx, cy, t, r, k,
    log w) against the block means (:func:`_projected`): the Jacobian of the projected
    residuals to first order (Kaufman's), -P sqrt(n) D ds/dp, D = c1 - c0 + c2 u + c3 v
    the light less the level behind at each block, P the projection off the basis."""
    w = math.exp(p[5])
    d, dd = _distance(blk.x, blk.y, p, flat)
    th = np.tanh(d / w)
    s = 0.5 * (1.0 + th)
    r, coef, a = _projected(blk, s)
    ds = 0.5 * (1.0 - th * th) / w  # ds / dd
    big = coef[1] - coef[0] + coef[2] * blk.u + coef[3] * blk.v
    sw = np.sqrt(blk.n)
    jac = -(sw * big) * np.vstack([ds * dd, ds * -d])  # (6, N): d (A c) / dp, weighted
    bw = a * sw  # the weighted basis (4, N); project the columns off it
    try:
        jac -= np.linalg.solve(bw @ bw.T, bw @ jac.T).T @ bw
    except np.linalg.LinAlgError:  # a basis without the shadow (s = 1 throughout)
        jac -= np.linalg.lstsq(bw.T, jac.T, rcond=None)[0].T @ bw
    return r, jac.T, coef


def fit_tip(
    counts: np.ndarray, ok: np.ndarray, start: tuple[float, float], angle: float, half: float
) -> OutlineTip | None:
    """The round end of a bar (half-width about ``half`` px, axis along ``angle`` radians
    from ``start``, frame x, y, into the bar) fitted to the counts about it: first over
    blocks of at most SCREEN_BLOCKS a side, then, when that could be a bar's end
    (:func:`_screened`), from there at MAX_BLOCKS (:func:`_fit`); None when a window is
    empty, the start is not worth a fit (:func:`_promising`), the screen rejects it or a
    fit fails."""
    tip = _fit(counts, ok, start, angle, half, SCREEN_BLOCKS)
    if tip is None or not _screened(tip):
        return None
    p0 = (tip.x, tip.y, tip.angle, tip.half_width, tip.taper, tip.blur)
    return _fit(counts, ok, start, angle, half, MAX_BLOCKS, p0)


def _screened(tip: OutlineTip) -> bool:
    """A coarse fit that may be a bar's end: a standard error of at most SCREEN_SIGMA px, a
    shadow darker than the light, and a taper within 2 standard errors of MAX_TAPER."""
    return (
        tip.sigma <= SCREEN_SIGMA
        and tip.contrast > 0.0
        and abs(tip.taper) - 2.0 * tip.taper_sigma <= MAX_TAPER
    )


def _fit(
    counts: np.ndarray,
    ok: np.ndarray,
    start: tuple[float, float],
    angle: float,
    half: float,
    most: int,
    p0: tuple[float, ...] | None = None,
) -> OutlineTip | None:
    """:func:`fit_tip` over blocks of at most ``most`` a side, from ``p0`` (x, y, angle,
    half-width, taper, blur) or the start; the straight end fitted only where the rest
    pins the beam (:func:`_bar`)."""
    margin = max(TIP_MARGIN * half, MIN_MARGIN)
    reach = 0.5 * TIP_LENGTH * half
    ux, uy = math.cos(angle), math.sin(angle)
    mid = (start[0] + ux * reach, start[1] + uy * reach)
    blk = _window(counts, ok, mid, reach + half + margin, most)
    if blk is None:
        return None
    scale = _noise(blk)
    if not scale > 0:
        return None

    move = 2.0 * half + 4.0
    lo = [start[0] - move, start[1] - move, angle - 0.5, 0.3 * half, -0.5, -1.5]
    hi = [
        start[0] + move,
        start[1] + move,
        angle + 0.5,
        2.5 * half + 1.0,
        0.5,
        math.log(4 * half + 20),
    ]
    first = [start[0], start[1], angle, half, 0.0, max(1.0, 0.2 * half)] if p0 is None else p0
    x0 = np.clip([*first[:5], math.log(first[5])], lo, hi)
    units = np.array([half, half, 0.1, half, 0.05, 0.5])  # a step that matters, each
    light = _chi2(_projected(blk, np.ones_like(blk.m))[0], scale)
    if p0 is None and not _promising(blk, x0, scale, light):
        return None

    def model(p: np.ndarray, flat: bool = False) -> tuple[np.ndarray, np.ndarray]:
        return _model(blk, p, flat)[:2]

    sol = _solve(model, x0, lo, hi, scale, units)
    q, r, jac = sol.x, sol.f, sol.jac
    assert jac is not None
    w = 1.0 / np.sqrt(1.0 + (r / scale) ** 2)  # soft-L1's weights at the solution
    h = jac.T @ (jac * w[:, None])
    if not np.linalg.det(h) > 0:
        return None
    misfit = float(np.sqrt(np.mean(r**2))) / scale
    # the residuals' own scale where the model misses the light (a peak, a streak): the
    # error grows with what the model leaves, not only with the noise
    cov = np.linalg.inv(h) * (scale * max(misfit, 1.0)) ** 2
    chi = _chi2(r, scale)
    coef = _model(blk, q, False)[2]
    tip = OutlineTip(
        float(q[0]),
        float(q[1]),
        float(q[2]),
        float(q[3]),
        float(q[4]),
        math.sqrt(max(float(cov[4, 4]), 0.0)),
        math.exp(float(q[5])),
        math.sqrt(max(float(cov[0, 0] + cov[1, 1]), 0.0)),
        light - chi,
        math.inf,
        float(coef[1] - coef[0]) / scale,
        misfit,
        blk.b,
        _ahead(blk, q, margin),
    )
    if not _bar(tip, half):
        return tip  # the straight end is not worth fitting
    if unresolved(tip):
        return replace(tip, round=math.nan)  # no straight end the counts could tell from it
    # the same fit with a straight end (a paddle's box), from the round one
    box = _solve(lambda p: model(p, True), q, lo, hi, scale, units).f
    return replace(tip, round=_chi2(box, scale) - chi)


def _ahead(blk: _Blocks, p: np.ndarray, side: float) -> float:
    """The fraction of the square of ``side`` px ahead of the outline p's end (centred on
    its axis, from the end outward) that the window's valid pixels cover."""
    cx, cy, t, r = p[:4]
    ux, uy = math.cos(t), math.sin(t)
    along = (blk.x - cx) * ux + (blk.y - cy) * uy
    across = (blk.x - cx) * uy - (blk.y - cy) * ux
    square = (along < -r) & (along >= -r - side) & (np.abs(across) < 0.5 * side)
    return float(blk.n[square].sum()) / side**2


def _promising(blk: _Blocks, p: np.ndarray, scale: float, light: float) -> bool:
    """True when the outline p (:func:`_model`) is darker than the light by START_CONTRAST
    noise (``scale``) and gains over the light alone (chi^2 ``light``) and over the same bar
    with no end in the window (:func:`_endless`): a fit from there is worth its ~30
    evaluations (a start on no shadow ends on none, one on no end on no beam)."""
    r, _, coef = _model(blk, p, False)
    if not (float(coef[1] - coef[0]) >= START_CONTRAST * scale):
        return False
    chi = _chi2(r, scale)
    return chi < light and chi < _chi2(_model(blk, _endless(blk, p), False)[0], scale)


def _endless(blk: _Blocks, p: np.ndarray) -> np.ndarray:
    """The outline p (no taper) with its end moved back along the axis out of the window
    ``blk``: a bar running on through the whole window."""
    q = np.array(p, dtype=np.float64)
    ux, uy = math.cos(q[2]), math.sin(q[2])
    along = (blk.x - q[0]) * ux + (blk.y - q[1]) * uy
    back = float(np.max(-along, initial=0.0)) + q[3] + 4.0 * math.exp(q[5]) + blk.b
    q[0] -= back * ux
    q[1] -= back * uy
    return q


def _solve(
    model: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    x0: np.ndarray,
    lo: list[float],
    hi: list[float],
    scale: float,
    units: np.ndarray,
) -> least_squares.Solution:
    """The soft-L1 fit (scale ``scale``) of ``model`` (residuals and their Jacobian) from x0
    in [lo, hi], at most MAX_NFEV evaluations, until no parameter moves by 1e-4 of its
    ``units`` (:func:`scattertag.beam.least_squares.solve`)."""
    return least_squares.solve(
        model,
        x0,
        np.array(lo),
        np.array(hi),
        units,
        f_scale=scale,
        max_nfev=MAX_NFEV,
        xtol=1e-4,
        jac=True,
    )


def _bar(tip: OutlineTip, half: float) -> bool:
    """:func:`pins` but for the round end."""
    return (
        tip.sigma <= MAX_SIGMA
        and tip.contrast > 0.0
        and tip.shadow >= CHI_SHADOW
        and abs(tip.taper) + TAPER_Z * tip.taper_sigma <= MAX_TAPER
        and 0.35 * half < tip.half_width < 2.4 * half + 1.0
    )


def pins(tip: OutlineTip, half: float) -> bool:
    """True when a fit from a start of half-width ``half`` px pins the beam: its centre's
    standard error at most MAX_SIGMA, a shadow darker than the light and standing out of
    the noise (CHI_SHADOW), sides of constant width (the taper and TAPER_Z standard errors
    of it under MAX_TAPER), a half-width inside its bounds, and a round end (CHI_ROUND over
    a straight one, where the counts can tell one: :func:`unresolved`; else the light seen
    ahead of the end, AHEAD)."""
    seen = unresolved(tip) and tip.ahead >= AHEAD
    return _bar(tip, half) and (tip.round >= CHI_ROUND or seen)


def unresolved(tip: OutlineTip) -> bool:
    """True when the fitted end is too thin for its window's blocks to show its shape: a
    round end's corners off a straight one's, CORNERS r^2, cover under one block."""
    return CORNERS * tip.half_width**2 < tip.block**2
