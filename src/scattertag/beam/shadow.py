"""The beam centre from the round end of a beamstop's shadow.

A disk beamstop is centred on the beam, and a bar or rod beamstop ends in a round cap
about it; the shadow's round edge is therefore a circle about the beam centre, whatever
the sample scatters (on a frame whose sample shows nothing, it is the only centre there
is). On a block-averaged level (:func:`shadow_mask`), a shadow is the blocks much darker
than the mean about them, counted above the frame's floor (an integrating detector's
offset). The point of a shadow farthest from any bright block (a disk's centre) and, when
that widest part is long (a bar), its two ends are provisional centres. Around each, the
edge is traced at the finest block size whose counts allow it: points where the gradient
of the smoothed counts peaks across the edge (sub-block, by a parabola) and points away
from the provisional centre (into the light), the innermost such edge along each ray; a
circle is fitted to them (Gauss-Newton on the radial residuals, outliers beyond 3 robust
standard deviations dropped). A fit is kept if its points cover at least
:data:`MIN_SPAN` of the circle and its centre's standard error is at most
:data:`MAX_SIGMA` pixels. On 350 simulated frames (the benchmark's seeds 0 and 1), 70
circles were kept: 69 within 2.1 px of the true centre, one 378 px off (a frame where a
tight ring fit wins); the pointed tips of wedge stops gave none.

A bar's round end is half a circle, and the circle fit sees at most half of it. The tip of
each long shadow (:func:`bar_tips`) is therefore fitted as what the stop is: a half disk
about the beam on a bar of the same half-width along an axis (centre, axis angle and
half-width free; the signed distance to that outline, :func:`_tip_distance`), through the
edge crests of the half disk and of both sides over TIP_SIDE half-widths. It pins the beam
when the centre's standard error is at most :data:`MAX_SIGMA`, the edge points cover
TIP_MIN_CAP of the half circle and TIP_MIN_SIDES half-widths of each side, and a straight
end (a paddle's box) does not fit the same points about as well (TIP_ROUNDER). Every tip
so kept lay within 1.4 px of the true centre: 43 on the benchmark's seeds 0 (500 frames)
and 1 (150), 19 on seeds 2 (300) and 3 (150).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from scattertag.beam.boxes import EdgeDistance, box_all, close_cross, nonzero2d
from scattertag.beam.order_stats import median, percentile

#: The edge points of a kept fit cover at least this fraction of the circle, in SPAN_SECTORS
#: sectors (fewer on a circle under SPAN_SECTORS level px long, but at least MIN_SECTORS:
#: the circumference of the least radius traced, 2.5 level px).
MIN_SPAN, SPAN_SECTORS, MIN_SECTORS = 0.45, 36, 16
#: Largest standard error (frame pixels) of a kept fit's centre.
MAX_SIGMA = 0.25
#: A round edge's normals turn with it: about the fitted centre, the edge normals' direction
#: changes with the polar angle at least this fast (:func:`_turn`: 1 along a circle, 0
#: along a straight edge). Of the loose circles of seeds 0 and 1 (650 frames), 235 of the
#: 600 farther than 2 px from the beam turn under 0.2 (a wedge's sides where it leaves the
#: frame, a bar's sides), 138 of the 139 within 2 px turn at 0.4-1.
MIN_TURN = 0.3
#: Stretches of a traced edge: its points sorted by polar angle, split where that jumps by
#: more than this (radians).
TURN_GAP = math.pi / 6
#: Least edge points of a kept fit.
MIN_POINTS = 12
#: Counts per block wanted where the edge is traced (the block size doubles until reached).
EDGE_COUNTS = 16.0
#: A shadow block is darker than the mean about it by this much in log(1 + counts - floor).
CONTRAST = 1.0
#: Reach (Gaussian sigma, fraction of the frame's longer side) of the mean a shadow block
#: is compared with.
REACH = 0.04
#: Least distance (blocks) from a shadow's widest point to the light.
MIN_WIDTH = 1.5
#: Largest beamstop radius (fraction of the frame's longer side) and most shadows tried.
MAX_RADIUS, MAX_SHADOWS = 0.1, 5
#: Most blocks along a side of the window traced around a provisional centre.
MAX_WINDOW = 200


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


def shadow_mask(mean: np.ndarray, valid: np.ndarray, reach: float) -> np.ndarray:
    """(R, C) bool: valid blocks at least CONTRAST darker, in h = log(1 + mean - floor)
    averaged over 3 x 3 blocks, than the mean of h about them over the unshadowed blocks
    (Gaussian of ``reach`` blocks, two passes).

    mean: (R, C) mean counts of the blocks; floor, the 0.5th percentile of the valid blocks,
    is the counts a shadow keeps whatever the light (an integrating detector's offset, dark
    counts); a beamstop's shadow stands out, the slope of a steep pattern does not.
    """
    floor = percentile(mean[valid], 0.5)
    h = np.log1p(np.maximum(mean - floor, 0.0))
    m = valid.astype(np.float64)
    hs = ndimage.uniform_filter(h * m, 3) / np.maximum(ndimage.uniform_filter(m, 3), 1e-3)
    dark = np.zeros_like(valid)
    k = max(1, int(reach // 2))  # the wide mean on blocks of k x k: it is smooth
    for _ in range(2):
        dark = valid & (hs < _local_mean(h, valid & ~dark, reach / k, k) - CONTRAST)
    return dark


def _local_mean(h: np.ndarray, use: np.ndarray, sigma: float, k: int) -> np.ndarray:
    """(R, C) Gaussian mean (``sigma`` in units of k blocks) of h over the blocks ``use``,
    computed on k x k blocks and spread back to the blocks (nearest)."""
    m = use.astype(np.float64)
    rows, cols = h.shape
    if k > 1:
        hm = h * m
        if rows % k or cols % k:
            pad = ((0, -rows % k), (0, -cols % k))
            hm, m = np.pad(hm, pad), np.pad(m, pad)
        hm, m = _blocks(hm, k), _blocks(m, k, True)
    else:
        hm = h * m
    num = ndimage.gaussian_filter(hm, sigma, mode="constant", truncate=3.0)
    den = ndimage.gaussian_filter(m, sigma, mode="constant", truncate=3.0)
    out = num / np.maximum(den, 1e-3 * k * k)
    if k > 1:
        out = np.repeat(np.repeat(out, k, axis=0), k, axis=1)[:rows, :cols]
    return out


@dataclass(frozen=True)
class Shadows:
    """Beamstop shadows on a level of b x b frame-pixel blocks: ``bright`` (R, C) bool the
    valid blocks outside them, ``label`` (R, C) int numbering the shadows' connected parts
    1..count (0 elsewhere; a detector gap across a shadow is part of it)."""

    bright: np.ndarray
    label: np.ndarray
    count: int
    b: int
    _largest: dict = field(default_factory=dict, compare=False, repr=False)


def find_shadows(
    g: np.ndarray, valid: np.ndarray, b: int, side: int, mean: np.ndarray | None = None
) -> Shadows:
    """The shadows (:func:`shadow_mask`) of a level: g, valid (R, C) log(1 + mean counts)
    of b x b blocks and which are valid; ``side`` the frame's longer side (pixels);
    ``mean`` expm1(g) when the caller holds it."""
    reach = max(3.0, REACH * side / b)
    dark = shadow_mask(np.expm1(g) if mean is None else mean, valid, reach)
    bright = valid & ~dark
    if not dark.any() or not bright.any():
        return Shadows(bright, np.zeros(dark.shape, np.int32), 0, b)
    # a shadow crossed by a detector gap stays one shadow
    dark |= ~valid & close_cross(dark, 2)
    lab, n = ndimage.label(dark, structure=np.ones((3, 3), bool))
    return Shadows(bright, lab, int(n), b)


def shadow_circles(
    counts: np.ndarray,
    ok: np.ndarray,
    shadows: Shadows,
    min_span: float = MIN_SPAN,
    max_sigma: float = MAX_SIGMA,
) -> list[ShadowCircle]:
    """Circles fitted to the round edges of beamstop shadows (the most precise first).

    counts, ok: the frame (rows, cols) and its valid pixels; shadows: :func:`find_shadows`
    on a level of the frame. A circle is kept if its edge points cover ``min_span`` of it
    and its centre's standard error is at most ``max_sigma`` pixels.
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
            fit = _fit_edge(counts, ok, start, r0 * b, b, min_span, max_sigma)
            if fit is not None:
                out.append(fit)
    out.sort(key=lambda c: c.sigma)
    kept: list[ShadowCircle] = []
    for c in out:  # one circle per place
        if all(math.hypot(c.x - d.x, c.y - d.y) > max(2.0, 0.5 * d.radius) for d in kept):
            kept.append(c)
    return kept


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


def largest_shadows(
    shadows: Shadows, most: int = 3
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(iy, ix, v) of each of the ``most`` largest shadows of at least 6 blocks, largest
    first: its blocks' rows and columns, and v = (vx, vy) the unit vector along its long
    axis (the principal axis of the blocks' positions). Found once per ``shadows``."""
    lab = shadows.label
    if shadows.count == 0:
        return []
    if most in shadows._largest:  # the axes, the bar tips and the glow ask for them
        return shadows._largest[most]
    sizes = np.bincount(lab.ravel(), minlength=shadows.count + 1)[1:]
    out = []
    for k in np.argsort(-sizes)[:most]:
        if sizes[k] < 6:
            break
        iy, ix = nonzero2d(lab == k + 1)
        x, y = ix - ix.mean(), iy - iy.mean()
        out.append((iy, ix, np.linalg.eigh(np.cov(np.stack([x, y])))[1][:, 1]))
    shadows._largest[most] = out
    return out


def shadow_tips(shadows: Shadows, most: int = 3) -> list[tuple[float, float, float, float]]:
    """(x, y, ux, uy) in frame pixels: the tip of each long shadow that reaches toward the
    frame's border (a bar, rod, wedge or a disk's arm), and the unit vector along its long
    axis from the tip into the shadow; the ``most`` largest shadows of at least 6 blocks.

    The beam lies on that axis near the tip: half the bar's width inside a bar's round end,
    some way inside a wedge's point (where the tip alone does not say).
    """
    return [_tip(iy, ix, v, shadows) for iy, ix, v in largest_shadows(shadows, most)]


def held_tips(shadows: Shadows, most: int = 3) -> list[tuple[float, float, float, float]]:
    """:func:`shadow_tips` of the shadows that run from the tip toward the level's border
    (the other end at most HELD_BORDER of the tip's distance from it): a stop held from
    outside the frame along its axis (a bar, rod, wedge or arm), whose outline is
    mirror-symmetric about an axis through the beam; not a paddle's box seen without its
    arm (its long axis may run across the arm, about a line that misses the beam)."""
    out = []
    for iy, ix, v in largest_shadows(shadows, most):
        (_, tip), (_, other) = _end_border(iy, ix, v, shadows)
        if other <= HELD_BORDER * tip:
            out.append(_tip(iy, ix, v, shadows))
    return out


def _end_border(
    iy: np.ndarray,
    ix: np.ndarray,
    v: np.ndarray,
    shadows: Shadows,
    edge: EdgeDistance | None = None,
) -> tuple[tuple[int, float], tuple[int, float]]:
    """((j, d), (k, d)): the ends of a shadow's long axis v (indices into its blocks iy, ix
    of ``shadows``) and their distances (blocks) to the level's border, or to what ``edge``
    (distances, blocks, :class:`~scattertag.beam.boxes.EdgeDistance`) measures, the farther
    (the tip) first."""
    rows, cols = shadows.label.shape
    along = (ix - ix.mean()) * v[0] + (iy - iy.mean()) * v[1]
    ends = (int(np.argmin(along)), int(np.argmax(along)))
    if edge is None:
        border = [float(min(ix[j], iy[j], cols - 1 - ix[j], rows - 1 - iy[j])) for j in ends]
    else:
        border = [float(edge[iy[j], ix[j]]) for j in ends]
    if border[0] < border[1]:
        return (ends[1], border[1]), (ends[0], border[0])
    return (ends[0], border[0]), (ends[1], border[1])


def _tip(
    iy: np.ndarray,
    ix: np.ndarray,
    v: np.ndarray,
    shadows: Shadows,
    edge: EdgeDistance | None = None,
) -> tuple[float, float, float, float]:
    """(x, y, ux, uy) frame px: the end of a shadow's long axis v (its blocks iy, ix of
    ``shadows``) farther from the level's border (or what ``edge`` measures,
    :func:`_end_border`), and the unit vector from it inward."""
    b = shadows.b
    (tip, _), (other, _) = _end_border(iy, ix, v, shadows, edge)
    inward = (ix[other] - ix[tip]) * v[0] + (iy[other] - iy[tip]) * v[1]
    sign = 1.0 if inward >= 0 else -1.0
    return b * ix[tip] + (b - 1) / 2, b * iy[tip] + (b - 1) / 2, sign * v[0], sign * v[1]


@dataclass(frozen=True)
class BarTip:
    """The round end of a bar's shadow fitted as a half disk on a bar of constant width,
    in frame pixels: x, y the half disk's centre (the beam); angle (radians) of the bar's
    axis from the centre into the bar; half_width; rms residual; sigma the centre's
    standard error; cap the fraction of the half circle's sectors (TIP_SECTORS, fewer on a
    half circle under TIP_SECTORS level px long) its edge points cover; sides the length
    (in half-widths, at most TIP_SIDE) of each side's edge seen, the shorter of the two;
    points kept."""

    x: float
    y: float
    angle: float
    half_width: float
    rms: float
    sigma: float
    cap: float
    sides: float
    points: int


#: A bar tip's edge is traced over this many half-widths of the bar's sides.
TIP_SIDE = 3.0
#: Sectors of a bar tip's half circle whose cover is counted.
TIP_SECTORS = 12
#: Least half-width (blocks of the traced level) of a bar whose tip is fitted and kept (as
#: the least radius of a circle: a thinner bar's two edges blur into one).
TIP_MIN_WIDTH = 2.5
#: A bar tip pins the beam if its centre's standard error is at most MAX_SIGMA px and its
#: edge points cover TIP_MIN_CAP of its half circle's sectors and TIP_MIN_SIDES half-widths
#: of each side (a bar of constant width: not a disk on a thinner arm, whose circle
#: :func:`shadow_circles` fits).
TIP_MIN_CAP, TIP_MIN_SIDES = 0.75, 1.0
#: ... and its edge points' truncated cost (:func:`_truncated_cost`) is at most this
#: fraction of a straight end's (a paddle's box) through the same points.
TIP_ROUNDER = 0.7


def bar_tips(counts: np.ndarray, ok: np.ndarray, shadows: Shadows, most: int = 3) -> list[BarTip]:
    """The round ends of the long shadows (bars, rods; :func:`shadow_tips`) fitted as a half
    disk on a bar of constant width (:func:`_fit_tip`) that pin the beam, the most precise
    first.

    counts, ok: the frame (rows, cols) and its valid pixels; shadows: :func:`find_shadows`
    on a level of the frame; ``most`` largest shadows of at least 6 blocks. The bar's
    half-width starts as half its blocks per block of length within MAX_RADIUS of the side
    of the tip, the centre that far inside the tip.
    """
    out = []
    for start, angle, half in tip_starts(shadows, max(counts.shape), most):
        if half < TIP_MIN_WIDTH:  # too short to tell a width along it
            continue
        fit = _fit_tip(counts, ok, start, angle, half, shadows.b)
        if fit is not None:
            out.append(fit)
    out.sort(key=lambda t: t.sigma)
    return out


def tip_starts(
    shadows: Shadows, side: int, most: int = 3, edge: EdgeDistance | None = None
) -> list[tuple[tuple[float, float], float, float]]:
    """(start, angle, half) of the ``most`` largest shadows' tips (:func:`shadow_tips`):
    the bar's half-width ``half`` (frame px) as half its blocks per block of length within
    MAX_RADIUS of the side (``side`` the frame's longer side) of the tip (0 when under 3
    blocks long), ``angle`` (radians) of its axis into the shadow, ``start`` (frame x, y)
    that far inside the tip: where a round end's centre would be. The tip is the end
    farther from the level's border, or from what ``edge`` measures (:func:`_end_border`)."""
    b = shadows.b
    out = []
    for iy, ix, v in largest_shadows(shadows, most):
        x, y, ux, uy = _tip(iy, ix, v, shadows, edge)
        along = (ix * b + (b - 1) / 2 - x) * ux + (iy * b + (b - 1) / 2 - y) * uy
        per = np.bincount((along[along < MAX_RADIUS * side] / b).astype(np.int64))
        half = 0.5 * b * float(np.median(per[1:])) if per.size >= 4 else 0.0
        start = (x + ux * (half - 0.5 * b), y + uy * (half - 0.5 * b))
        out.append((start, math.atan2(uy, ux), half))
    return out


def tip_cover(tip: BarTip) -> float:
    """The fraction of a bar tip's traced outline (half circle and TIP_SIDE half-widths of
    each side) that its edge points cover, half from each, in [0, 1]."""
    return 0.5 * tip.cap + 0.5 * tip.sides / TIP_SIDE


def _tip_distance(
    x: np.ndarray, y: np.ndarray, p: np.ndarray, flat: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d, jac, along): signed distance of points (x, y) to the outline of a bar of
    half-width r along the ray from (cx, cy) at angle t, ending in a half disk about
    (cx, cy) (p = (cx, cy, t, r)), or with ``flat`` in a straight end across the bar r
    behind (cx, cy) (a paddle's box; its corners taken as the nearer of the two lines);
    jac (4, N) its derivatives in p; along the points' coordinate along the ray (negative
    on the end's side)."""
    cx, cy, t, r = p
    ux, uy = math.cos(t), math.sin(t)
    qx, qy = x - cx, y - cy
    along = qx * ux + qy * uy
    across = qx * uy - qy * ux
    s = np.where(across >= 0, 1.0, -1.0)
    ones = np.ones_like(along)
    if flat:
        side = np.abs(across) - r >= -(along + r)
        d = np.where(side, np.abs(across) - r, -(along + r))
        cap_jac = (ux * ones, uy * ones, across, -ones)
    else:
        q = np.maximum(np.hypot(qx, qy), 1e-9)
        side = along >= 0
        d = np.where(side, np.abs(across), q) - r
        cap_jac = (-qx / q, -qy / q, 0.0 * ones, -ones)
    side_jac = (-s * uy, s * ux, s * along, -ones)
    jac = np.stack([np.where(side, a, b) for a, b in zip(side_jac, cap_jac)])
    return d, jac, along


def _truncated_cost(d: np.ndarray, w: np.ndarray) -> float:
    """Weighted mean of min(d^2, 1): residuals (level px) beyond one count as one."""
    return float(np.minimum(d * d, 1.0) @ w / w.sum())


def _fit_tip(
    counts: np.ndarray,
    ok: np.ndarray,
    start: tuple[float, float],
    angle: float,
    half: float,
    b_max: int,
) -> BarTip | None:
    """The half disk on a bar of constant width through the shadow edge about ``start``
    (frame x, y; the bar along ``angle``, half-width about ``half`` px), if it pins the
    beam (:func:`_fit_tip_at`): traced at the finest block size that the counts allow
    (:func:`_edge_window`), else once at twice that (at most ``b_max``). A blurred edge
    (a stop's edge blurs over up to 20 px) traced at single pixels gives crests that the
    noise scatters along the flat top of its gradient; over blocks of 2 they lie on it."""
    ux, uy = math.cos(angle), math.sin(angle)
    reach = 0.5 * (TIP_SIDE - 1.0) * half  # the window spans the half disk and the sides
    mid = (start[0] + ux * reach, start[1] + uy * reach)
    win = _edge_window(counts, ok, mid, reach + half + 2.0 * b_max, b_max)
    if win is None:
        return None
    fit = _fit_tip_at(win, start, angle, half)
    if fit is None and 2 * win.b <= b_max:
        win = _edge_window(counts, ok, mid, reach + half + 2.0 * b_max, b_max, 2 * win.b)
        fit = None if win is None else _fit_tip_at(win, start, angle, half)
    return fit


def _fit_tip_at(
    win: _Window, start: tuple[float, float], angle: float, half: float
) -> BarTip | None:
    """:func:`_fit_tip` on the edge evidence ``win``: edge crests within the bar's first
    TIP_SIDE half-widths, brightening away from the outline; the innermost along each
    stretch of the outline; robust Gauss-Newton on the signed distances (:func:`_robust`);
    None unless it pins the beam (TIP_MIN_CAP, TIP_MIN_SIDES, MAX_SIGMA, TIP_ROUNDER)."""
    if half / win.b < TIP_MIN_WIDTH:
        return None
    p = np.array([*win.level(*start), angle, half / win.b])
    pts = _tip_edge(win, p)
    if pts is None:
        return None
    ex, ey, w = pts
    fit = _robust(lambda q: _tip_distance(ex, ey, q)[:2], p, w)
    if fit is None:
        return None
    q, rms, cov, keep = fit
    sigma = math.sqrt(max(cov[0, 0] + cov[1, 1], 0.0)) * win.b
    if sigma > MAX_SIGMA or not max(0.5 * p[3], TIP_MIN_WIDTH) <= q[3] <= 1.6 * p[3] + 1.0:
        return None
    cap, sides = _tip_seen(ex[keep], ey[keep], q)
    if cap < TIP_MIN_CAP or sides < TIP_MIN_SIDES:
        return None
    # a straight end (a paddle's box) through the same points: the end must be round
    box = _robust(lambda q: _tip_distance(ex, ey, q, flat=True)[:2], q, w)
    if box is not None:
        flat = _truncated_cost(_tip_distance(ex, ey, box[0], flat=True)[0], w)
        if _truncated_cost(_tip_distance(ex, ey, q)[0], w) > TIP_ROUNDER * flat:
            return None
    fx, fy = win.frame(q[0], q[1])
    return BarTip(
        float(fx),
        float(fy),
        float(q[2]),
        float(q[3] * win.b),
        rms * win.b,
        sigma,
        cap,
        sides,
        int(keep.sum()),
    )


def _tip_edge(win: _Window, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(x, y, w) level coordinates and gradient magnitude of the edge crests of a bar tip
    (:func:`_tip_distance`, p) in ``win``: within half its half-width (and 2 blocks) of the
    outline and TIP_SIDE half-widths along the sides, brightening outward within 45
    degrees of its normal, at least 0.3 of the 95th percentile of the gradient magnitude,
    the innermost (within 1.5 blocks) along each stretch of the outline."""
    rr = p[3]
    iy, ix = nonzero2d(win.inner & (win.mag > 0))
    d, _, along = _tip_distance(ix.astype(np.float64), iy.astype(np.float64), p)
    near = (np.abs(d) < 0.5 * rr + 2.0) & (along < TIP_SIDE * rr)
    iy, ix, along = iy[near], ix[near], along[near]
    if iy.size < MIN_POINTS:
        return None
    mx, my = _outline_normal(ix, iy, along, p)
    crests = _outward_crests(win, iy, ix, mx, my)  # brighter away from the bar
    if crests is None:
        return None
    ex, ey, w = crests
    d, _, along = _tip_distance(ex, ey, p)
    key = _outline_stretch(ex, ey, along, p)
    first = np.full(int(key.max()) + 1, np.inf)
    np.minimum.at(first, key, d)
    inner = d <= first[key] + 1.5
    return ex[inner], ey[inner], w[inner]


def _tip_seen(x: np.ndarray, y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(cap, sides) of a bar tip (:func:`_tip_distance`, p) seen by edge points (x, y):
    the fraction of its half circle's sectors (TIP_SECTORS, at least a level px long)
    holding a point, and the shorter extent along the two sides, in half-widths (at most
    TIP_SIDE)."""
    _, _, along = _tip_distance(x, y, p)
    cap = along < 0
    ang = np.arctan2(y[cap] - p[1], x[cap] - p[0]) - (p[2] + math.pi)
    ang = (ang + math.pi) % (2 * math.pi) - math.pi  # from the tip's direction, in (-pi, pi]
    n = int(np.clip(math.pi * p[3], 4, TIP_SECTORS))
    sectors = np.unique(np.clip(((ang + 0.5 * math.pi) / math.pi * n).astype(np.int64), 0, n - 1))
    across = (x - p[0]) * math.sin(p[2]) - (y - p[1]) * math.cos(p[2])
    seen = [along[~cap & (across * s > 0)] for s in (1.0, -1.0)]
    sides = min(float(a.max() - a.min()) / p[3] if a.size >= 2 else 0.0 for a in seen)
    return sectors.size / n, min(sides, TIP_SIDE)


def _outline_normal(
    x: np.ndarray, y: np.ndarray, along: np.ndarray, p: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals (x, y components) of a bar tip's outline (:func:`_tip_distance`, p)
    at the points nearest (x, y), pointing out of the bar."""
    cx, cy, t, _ = p
    ux, uy = math.cos(t), math.sin(t)
    qx, qy = x - cx, y - cy
    s = np.where(qx * uy - qy * ux >= 0, 1.0, -1.0)
    q = np.maximum(np.hypot(qx, qy), 1e-9)
    side = along >= 0
    return np.where(side, s * uy, qx / q), np.where(side, -s * ux, qy / q)


def _outline_stretch(x: np.ndarray, y: np.ndarray, along: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Which stretch of a bar tip's outline (:func:`_tip_distance`, p) each point (x, y)
    faces: one level px along either side, or an arc of one level px of the half disk."""
    cx, cy, t, r = p
    ux, uy = math.cos(t), math.sin(t)
    qx, qy = x - cx, y - cy
    caps = int(math.pi * r) + 1
    ang = np.arctan2(qy, qx) - (t + 0.5 * math.pi)
    ang = ang % (2 * math.pi)  # 0..pi on the half disk, from one side round to the other
    on_cap = np.clip((ang / math.pi * caps).astype(np.int64), 0, caps - 1)
    length = np.maximum(along, 0.0).astype(np.int64)
    right = (qx * uy - qy * ux >= 0).astype(np.int64)
    return np.where(along < 0, on_cap, caps + 2 * length + right)


#: A stop's midline (:func:`stop_axis`): its sides traced this far (fraction of the frame's
#: longer side) along the axis, from a quarter of it before the start, and at most
#: AXIS_WIDTH of it from the axis; kept when at least MIN_POINTS stretches of one traced
#: block show both sides and the midline's offset at the start has a standard error of at
#: most MAX_SIGMA px.
AXIS_LENGTH, AXIS_WIDTH = 0.08, 0.05
#: A held stop's shadow runs from its tip toward the level's border: its other end lies at
#: most this fraction of the tip's distance from the border (:func:`held_tips`).
HELD_BORDER = 0.5


@dataclass(frozen=True)
class StopAxis:
    """The midline of a long shadow between its two sides, in frame pixels: (x, y) its point
    nearest the start, ``angle`` its direction (radians) from there into the shadow,
    ``sigma`` the standard error of (x, y) across it, ``stretches`` how many stretches
    along it showed both sides."""

    x: float
    y: float
    angle: float
    sigma: float
    stretches: int


def stop_axis(
    counts: np.ndarray, ok: np.ndarray, start: tuple[float, float], angle: float, b_max: int
) -> StopAxis | None:
    """The midline of the long shadow (a wedge, bar, rod, paddle or arm) along ``angle``
    (radians, into the shadow) about ``start`` (frame x, y), from its two sides; None when
    they are not both seen (MIN_POINTS stretches) or fix it worse than MAX_SIGMA px.

    A stop is held with its axis through the beam, and its outline is mirror-symmetric
    about that axis whatever its width does (a wedge opens, a paddle's box ends in an arm):
    along each stretch of one traced block, the innermost edge crest on each side that
    brightens away from the axis (:func:`_edge_window`, :func:`_crests`, within 45 degrees
    of the normal to the axis), and the middle of the two; a robust line (:func:`_robust`)
    through those middles against the position along the axis."""
    side = max(counts.shape)
    length, width = AXIS_LENGTH * side, AXIS_WIDTH * side
    ux, uy = math.cos(angle), math.sin(angle)
    mid = (start[0] + 0.375 * length * ux, start[1] + 0.375 * length * uy)
    win = _edge_window(counts, ok, mid, 0.625 * length + width, b_max)
    if win is None:
        return None
    b = win.b
    px, py = win.level(*start)
    iy, ix = nonzero2d(win.inner & (win.mag > 0))
    along = (ix - px) * ux + (iy - py) * uy
    across = (ix - px) * uy - (iy - py) * ux
    near = (along > -0.25 * length / b) & (along < length / b) & (np.abs(across) < width / b)
    iy, ix, across = iy[near], ix[near], across[near]
    if iy.size < MIN_POINTS:
        return None
    s = np.where(across >= 0, 1.0, -1.0)
    crests = _outward_crests(win, iy, ix, s * uy, -s * ux)  # brighter away from the axis
    if crests is None:
        return None
    ex, ey, _ = crests
    a = (ex - px) * ux + (ey - py) * uy
    c = (ex - px) * uy - (ey - py) * ux
    key = np.floor(a - a.min()).astype(np.int64)
    n = int(key.max()) + 1
    inner = [np.full(n, np.inf), np.full(n, np.inf)]
    np.minimum.at(inner[0], key[c >= 0], c[c >= 0])
    np.minimum.at(inner[1], key[c < 0], -c[c < 0])
    both = np.isfinite(inner[0]) & np.isfinite(inner[1])
    if both.sum() < MIN_POINTS:
        return None
    t = np.flatnonzero(both) + a.min() + 0.5
    m = 0.5 * (inner[0][both] - inner[1][both])

    def line(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return p[0] + p[1] * t - m, np.stack([np.ones_like(t), t])

    fit = _robust(line, np.array([float(median(m)), 0.0]), np.ones_like(t))
    if fit is None:
        return None
    q, _, cov, keep = fit
    sigma = math.sqrt(max(cov[0, 0], 0.0)) * b
    if sigma > MAX_SIGMA or keep.sum() < MIN_POINTS:
        return None
    fx, fy = win.frame(px + q[0] * uy, py - q[0] * ux)
    turn = math.atan(q[1])
    return StopAxis(float(fx), float(fy), angle - turn, sigma, int(keep.sum()))


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


@dataclass(frozen=True)
class _Window:
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


def _edge_window(
    counts: np.ndarray,
    ok: np.ndarray,
    start: tuple[float, float],
    half: float,
    b_max: int,
    b_min: int = 1,
) -> _Window | None:
    """The gradient of the counts smoothed over 1 block, in the window of +-``half`` frame
    px about ``start`` (x, y), at the finest block size (at least ``b_min``, at most
    ``b_max``) whose bright side holds EDGE_COUNTS a block and whose window is at most
    MAX_WINDOW blocks a side; None if the window holds under 64 valid pixels."""
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
    whole = counts.dtype.kind in "iub"
    s, n = _blocks(c, b, whole), _blocks(m.astype(np.float64), b, True)
    use = n >= 0.5 * b * b
    mean = np.where(use, s / np.maximum(n, 1.0), 0.0)
    wgt = use.astype(np.float64)
    num = ndimage.gaussian_filter(mean * wgt, 1.0, mode="nearest")
    den = ndimage.gaussian_filter(wgt, 1.0, mode="nearest")
    a = np.where(den > 0.2, num / np.maximum(den, 1e-9), 0.0)
    gy, gx = np.gradient(a)
    return _Window(b, x0, y0, gx, gy, np.hypot(gy, gx), box_all(use, 2))


def _outward_crests(
    win: _Window, iy: np.ndarray, ix: np.ndarray, mx: np.ndarray, my: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(x, y, w) level coordinates and gradient magnitude of the edge crests (:func:`_crests`)
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
    ex, ey, w, _ = _crests(win, iy[sel], ix[sel], nx[sel], ny[sel])
    if ex.size < MIN_POINTS:
        return None
    return ex, ey, w


def _crests(
    win: _Window, iy: np.ndarray, ix: np.ndarray, nx: np.ndarray, ny: np.ndarray
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


def _fit_edge(
    counts: np.ndarray,
    ok: np.ndarray,
    start: tuple[float, float],
    r0: float,
    b_max: int,
    min_span: float = MIN_SPAN,
    max_sigma: float = MAX_SIGMA,
) -> ShadowCircle | None:
    """The circle through the shadow edge around ``start`` (frame x, y; radius about r0),
    if its points cover ``min_span`` of it and its centre's standard error is at most
    ``max_sigma`` frame pixels."""
    win = _edge_window(counts, ok, start, 1.5 * r0 + 3.0 * b_max, b_max)
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
    ex, ey, w, k = _crests(win, iy, ix, nx, ny)
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


def _blocks(a: np.ndarray, b: int, whole: bool = False) -> np.ndarray:
    """(R // b, C // b) sums over b x b blocks. ``whole``: a holds whole numbers (counts,
    0/1), whose float sums are exact in any order: summed a strided slice at a time
    (~3x faster than the reshaped sum, whose order the strided one does not follow)."""
    if b == 1:
        return a
    rows, cols = a.shape[0] // b, a.shape[1] // b
    if not whole:
        return a[: rows * b, : cols * b].reshape(rows, b, cols, b).sum(axis=(1, 3))
    out = a[0 : rows * b : b, 0 : cols * b : b].copy()
    for i in range(b):
        for j in range(b):
            if i or j:
                out += a[i : rows * b : b, j : cols * b : b]
    return out


def _circle(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, start: tuple[float, float], iters: int = 10
) -> tuple[float, float, float, float, float, np.ndarray] | None:
    """Robust circle through points (x, y) with weights w: (cx, cy, R, rms, sigma of the
    centre, inlier mask). Gauss-Newton on d_i = |p_i - c| - R from ``start``
    (:func:`_robust`)."""
    radius = float(np.hypot(x - start[0], y - start[1]) @ w / w.sum())

    def model(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = x - p[0], y - p[1]
        r = np.maximum(np.hypot(dx, dy), 1e-9)
        return r - p[2], np.stack([-dx / r, -dy / r, -np.ones_like(r)])

    fit = _robust(model, np.array([start[0], start[1], radius]), w, iters)
    if fit is None:
        return None
    p, rms, cov, keep = fit
    sigma = math.sqrt(max(cov[0, 0] + cov[1, 1], 0.0))
    return float(p[0]), float(p[1]), float(p[2]), rms, sigma, keep


def _det_inv(h: np.ndarray) -> tuple[float, np.ndarray]:
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


def _robust(
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
        det, inv = _det_inv(h)
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
