"""A disk beamstop is centred on the beam, and a bar or rod beamstop ends in a round cap
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

A stop is held with its axis through the beam: the midline between the two sides of its
shadow (:func:`stop_axis`) is a line through the beam whatever its width does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scattertag.beam.boxes import nonzero2d
from scattertag.beam.edges import (
    MAX_SIGMA,
    MIN_POINTS,
    EdgeWindow,
    edge_window,
    outward_crests,
    robust,
)
from scattertag.beam.order_stats import median
from scattertag.beam.shadow import Shadows, tip_starts


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


def bar_tips(
    counts: np.ndarray,
    ok: np.ndarray,
    shadows: Shadows,
    most: int = 3,
    horizon: float | None = None,
) -> list[BarTip]:
    """The round ends of the long shadows (bars, rods; :func:`shadow_tips`) fitted as a half
    disk on a bar of constant width (:func:`_fit_tip`) that pin the beam, the most precise
    first.

    counts, ok: the frame (rows, cols) and its valid pixels; shadows: :func:`find_shadows`
    on a level of the frame; ``most`` largest shadows of at least 6 blocks, each from its
    tip and, where the shadow stops short of the level's border at both ends, from its
    other end too (:func:`tip_starts` with ``ends``: a bar's shadow fades out where the
    light about it grows dim, and that end may lie farther from the border). The bar's
    half-width starts as half its blocks per block of length within MAX_RADIUS of the side
    of the tip, the centre that far inside the tip. Given a film's ``horizon`` (frame row),
    the edge is traced on either side of it on its own scale (:func:`edge_window`).
    """
    out = []
    for start, angle, half in tip_starts(shadows, max(counts.shape), most, ends=True):
        if half < TIP_MIN_WIDTH:  # too short to tell a width along it
            continue
        fit = _fit_tip(counts, ok, start, angle, half, shadows.b, horizon)
        if fit is not None:
            out.append(fit)
    out.sort(key=lambda t: t.sigma)
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
    horizon: float | None = None,
) -> BarTip | None:
    """The half disk on a bar of constant width through the shadow edge about ``start``
    (frame x, y; the bar along ``angle``, half-width about ``half`` px), if it pins the
    beam (:func:`_fit_tip_at`): traced at the finest block size that the counts allow
    (:func:`edge_window`), else once at twice that (at most ``b_max``). A blurred edge
    (a stop's edge blurs over up to 20 px) traced at single pixels gives crests that the
    noise scatters along the flat top of its gradient; over blocks of 2 they lie on it.
    ``horizon``: a film's (frame row), as :func:`edge_window` takes it."""
    ux, uy = math.cos(angle), math.sin(angle)
    reach = 0.5 * (TIP_SIDE - 1.0) * half  # the window spans the half disk and the sides
    mid = (start[0] + ux * reach, start[1] + uy * reach)
    win = edge_window(counts, ok, mid, reach + half + 2.0 * b_max, b_max, horizon=horizon)
    if win is None:
        return None
    fit = _fit_tip_at(win, start, angle, half)
    if fit is None and 2 * win.b <= b_max:
        win = edge_window(counts, ok, mid, reach + half + 2.0 * b_max, b_max, 2 * win.b, horizon)
        fit = None if win is None else _fit_tip_at(win, start, angle, half)
    return fit


def _fit_tip_at(
    win: EdgeWindow, start: tuple[float, float], angle: float, half: float
) -> BarTip | None:
    """:func:`_fit_tip` on the edge evidence ``win``: edge crests within the bar's first
    TIP_SIDE half-widths, brightening away from the outline; the innermost along each
    stretch of the outline; robust Gauss-Newton on the signed distances (:func:`robust`);
    None unless it pins the beam (TIP_MIN_CAP, TIP_MIN_SIDES, MAX_SIGMA, TIP_ROUNDER)."""
    if half / win.b < TIP_MIN_WIDTH:
        return None
    p = np.array([*win.level(*start), angle, half / win.b])
    pts = _tip_edge(win, p)
    if pts is None:
        return None
    ex, ey, w = pts
    fit = robust(lambda q: _tip_distance(ex, ey, q)[:2], p, w)
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
    box = robust(lambda q: _tip_distance(ex, ey, q, flat=True)[:2], q, w)
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


def _tip_edge(win: EdgeWindow, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
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
    crests = outward_crests(win, iy, ix, mx, my)  # brighter away from the bar
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
    brightens away from the axis (:func:`edge_window`, :func:`edge_crests`, within 45 degrees
    of the normal to the axis), and the middle of the two; a robust line (:func:`robust`)
    through those middles against the position along the axis."""
    side = max(counts.shape)
    length, width = AXIS_LENGTH * side, AXIS_WIDTH * side
    ux, uy = math.cos(angle), math.sin(angle)
    mid = (start[0] + 0.375 * length * ux, start[1] + 0.375 * length * uy)
    win = edge_window(counts, ok, mid, 0.625 * length + width, b_max)
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
    crests = outward_crests(win, iy, ix, s * uy, -s * ux)  # brighter away from the axis
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

    fit = robust(line, np.array([float(median(m)), 0.0]), np.ones_like(t))
    if fit is None:
        return None
    q, _, cov, keep = fit
    sigma = math.sqrt(max(cov[0, 0], 0.0)) * b
    if sigma > MAX_SIGMA or keep.sum() < MIN_POINTS:
        return None
    fx, fy = win.frame(px + q[0] * uy, py - q[0] * ux)
    turn = math.atan(q[1])
    return StopAxis(float(fx), float(fy), angle - turn, sigma, int(keep.sum()))
