"""The last refinement of the chosen centre (:func:`polish`).

Point symmetry near it at the finest level for the pattern estimators, a shadow axis moved
onto its stop's midline, a ring fit traced again at twice the resolution and tried as
tilted cones (:func:`_tilted`).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from scattertag.beam import cones
from scattertag.beam.bars import StopAxis, stop_axis
from scattertag.beam.boxes import box_any, dilate_cross, nonzero2d
from scattertag.beam.candidates import Candidate
from scattertag.beam.choice import CONFIDENCE_THRESHOLD, TIGHT_ARCS, TIGHT_SIGMA
from scattertag.beam.cones import cone_fits
from scattertag.beam.grid import on_frame
from scattertag.beam.order_stats import median
from scattertag.beam.pose import Arcs, DetectorPose, within
from scattertag.beam.pyramid import Level, block_sums, level_from_sums, sums_floor, window_level
from scattertag.beam.rings import Ridges, circles, fit_arcs, level_ridges, ridges
from scattertag.beam.shadow import held_tips
from scattertag.beam.symmetry import bilinear, refine_symmetry, symmetry_reach, symmetry_sample

#: A chosen isotropy-search centre is polished by the point symmetry of the pixels within
#: this fraction of the ring level's longer side of it, and kept if those pairs correlate
#: at least POLISH_RHO (:func:`_polish_symmetry`).
POLISH_WINDOW, POLISH_RHO = 0.08, 0.8
#: A chosen ring fit is traced again at twice the ring level's resolution only within this
#: many pixels of that level of the ring level's ridge pixels (:func:`polish`).
POLISH_BAND = 8.0
#: The last polish of gradient and isotropy centres (:func:`_fine_symmetry`): window (share
#: of the level's side), largest standard error and move (frame px).
FINE_FROM = ("gradient", "isotropy", "symmetry")
FINE_WINDOW, FINE_SIGMA, FINE_MOVE = 0.08, 0.5, 8.0
#: A flat field's ramp in g across the frame's longer side (2-20 % in counts): a chosen
#: point-symmetry or shadow-axis centre, fitted with the ramp free, is polished without it
#: only where a ramp this steep could move the polish by at most FINE_SIGMA
#: (:func:`_ramp_bias`), else with the ramp free again.
RAMP_MAX = 0.2
#: Methods whose centre was fitted with the ramp free (:func:`refine_symmetry`).
RAMPED = ("symmetry", "axis")
#: A chosen shadow-axis centre moves onto its stop's midline (:func:`_axis_polish`) when
#: that lies within this fraction of the frame's longer side of it.
AXIS_MOVE = 0.01
#: ... over the bounding box of that band and this many pixels about it: the smoothing
#: (3 sigma), the Hessian's differences and the interior test reach 12 (:func:`_retrace`);
#: everywhere when the ring level shows fewer than POLISH_FEW_ARCS arcs.
POLISH_MARGIN, POLISH_FEW_ARCS = 16, 5
#: A chosen ring fit gives way to tilted cones through its arcs (:func:`_tilted`) whose
#: robust rms is at most CONE_RMS of the circles', whose standard error is at most
#: CONE_SIGMA of the goal's tolerance, within CONE_REACH of the diagonal of the circles'
#: centre, with a tilt in CONE_TILT (degrees) and a distance d of at least CONE_NEAR
#: times the outermost arc's radius (2 theta under 76 degrees there).
CONE_RMS, CONE_SIGMA, CONE_REACH = 0.7, 0.5, 0.1
#: The cone fit gives up early unless its starts reach this fraction of the circles' rms.
CONE_WORTH = 0.85
CONE_TILT, CONE_NEAR = (2.0, 45.0), 0.25
#: The cones with the pieces of one ring tied (:func:`cones.fit_cones` with ``tie``) are kept on
#: the same terms, and only where they fix the pose: the tilt at least POSE_Z of its
#: standard error, log d to within POSE_LOG_D, POSE_RINGS rings that show; they replace
#: the untied cones where those are not kept or have a standard error over TIE_GAIN times
#: theirs.
POSE_Z, POSE_LOG_D, POSE_RINGS, TIE_GAIN = 3.0, 0.25, 2, 2.0
#: Where neither is kept though the cones got past the early give-up, a ring fit whose
#: standard error is at least SEARCH_SIGMA frame px (circles that fit its arcs loosely) is
#: fitted once more from tilted starts (:func:`cones.searched_cones`), kept on the tied
#: cones' terms.
SEARCH_SIGMA = 0.5
#: Off the frame a found ring fit whose arcs tilted cones (tilt in CONE_TILT, d at least
#: CONE_NEAR radii) explain better (robust rms at most RIVAL_RMS of the circles')
#: with the direct beam farther from the circles' centre than the goal's tolerance plus
#: RIVAL_Z of the cones' standard error, or whose own standard error exceeds that
#: tolerance, does not fix the beam (:func:`_tilted`, :func:`_rival`): at most
#: RIVAL_CONFIDENCE (one estimator alone).
RIVAL_RMS, RIVAL_Z, RIVAL_CONFIDENCE = 0.95, 2.0, 0.25


def _polish_symmetry(ring: Level, best: Candidate) -> Candidate:
    """A chosen isotropy-search centre refined by the point symmetry of the pattern near it,
    at the ring level's resolution.

    The isotropy search has no precision of its own: it stops at a quarter of a fine block
    (1-2 px on 1000-2000 px frames). Near the beam I(q) = I(-q) holds best: a detector
    tilt tau moves the centre of a ring of radius R by about R^2 tan(tau) / d (d the
    distance in pixels), and anisotropy and a flat field's ramp grow with the distance
    too. So Gauss-Newton on g(p) - g(2c - p) (:func:`refine_symmetry`, no ramp) over the
    lit pixels within POLISH_WINDOW of the ring level's longer side of the centre; kept if
    the pairs correlate at least POLISH_RHO and the centre moves at most one ring-level
    block (it refines, it does not jump). A shadow-axis centre is a point-symmetry
    refinement already: polishing it so changed 9 errors by 0.02-0.8 px, 5 for the worse,
    and no hit (seed 0 of the benchmark).
    """
    radius = POLISH_WINDOW * max(ring.g.shape)
    x, y, sigma, rho = refine_symmetry(
        ring, ring.from_frame(best.x, best.y), ramp=False, radius=radius
    )
    if not (math.isfinite(x) and math.isfinite(y) and rho >= POLISH_RHO):
        return best
    fx, fy = ring.to_frame(x, y)
    if math.hypot(fx - best.x, fy - best.y) > ring.b:
        return best
    return replace(best, x=fx, y=fy, sigma=sigma * ring.b)


def _fine_level(ring: Level, x: float, y: float) -> Level:
    """The finest level the polish reads about the frame point (x, y): blocks of b / 2 (the
    ring level's kept sums) when the ring level's block b is even, built over the window
    that point symmetry within FINE_WINDOW of the level's side of (x, y) reads
    (:func:`window_level`, :func:`symmetry_reach`); else the ring level itself."""
    if ring.finer is None:
        return ring
    sums, n = ring.finer
    b = ring.b // 2
    reach = symmetry_reach(FINE_WINDOW * max(sums.shape))
    at = (x - (b - 1) / 2) / b, (y - (b - 1) / 2) / b  # from_frame at b
    return window_level(sums, n, b, 1.5, *at, reach, finer_floor(ring, sums, n, b))


def finer_floor(ring: Level, sums: np.ndarray, n: np.ndarray, b: int) -> float | None:
    """:func:`sums_floor` of the level of b x b blocks finer than the ``ring`` level (its
    block sums of counts and of valid pixels ``sums``, ``n``), taken once a frame (kept by
    the ring level): the fine polish's window and the retrace read the same floor (a 20th
    percentile of up to 250 000 block means, ~1.7 ms)."""
    return ring.kept(("floor", b), lambda: sums_floor(sums, n, b))


def _unshadowed(level: Level, ring: Level, side: int) -> Level:
    """``level`` (a block of the ring level or finer) without the ring level's beamstop
    shadows (:meth:`Level.shadows`, local contrast; ``side`` the frame's longer side),
    widened by 2 of its blocks as :func:`level_from_sums` widens the dark blocks: a stop that lets
    through a few per cent stays above the frame-wide dark floor, and its outline is
    point-symmetric about its own middle, not about the beam."""
    label = ring.shadows(side).label
    if not label.any():
        return level
    k = ring.b // level.b
    rows, cols = level.g.shape
    i = np.minimum(np.arange(rows) // k, label.shape[0] - 1)
    j = np.minimum(np.arange(cols) // k, label.shape[1] - 1)
    stop = dilate_cross(label[i][:, j] > 0, 2)
    return Level(
        level.g, level.ok, level.lit & ~stop, level.dark, level.b, level.sigma, window=level.window
    )


def _mirror_pairs(
    level: Level, x: float, y: float, radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(px, py, g) (N,): the lit pixels p within ``radius`` (level px) of (x, y) whose mirror
    2 (x, y) - p is lit and inside the level (at most 12000, evenly strided), and the
    smoothed level there; None under 50 such pixels."""
    inner = level.interior(1)
    iy, ix = nonzero2d(inner)
    near = (ix - x) ** 2 + (iy - y) ** 2 <= radius * radius
    iy, ix, _, gp = symmetry_sample(level, iy[near], ix[near], 12000)
    rows, cols = level.g.shape
    qx, qy = 2 * x - ix, 2 * y - iy
    inside = (qx >= 1) & (qx <= cols - 2) & (qy >= 1) & (qy <= rows - 2)
    qi, qj = np.rint(qy[inside]).astype(np.int64), np.rint(qx[inside]).astype(np.int64)
    use = np.flatnonzero(inside)[inner.ravel().take(qi * cols + qj)]
    if use.size < 50:
        return None
    return ix[use], iy[use], gp[use]


def _sharpness(level: Level, x: float, y: float, radius: float, h: float = 1.0) -> float:
    """Standard error (level px) of the point-symmetry centre (x, y) from the curvature of its
    criterion, inf where it is not a sharp minimum.

    S(c) = sum of Huber(g(p) - g(2c - p)) over the lit pixels p within ``radius`` whose mirror
    through (x, y) is lit, on the smoothed level; its second differences at steps ``h`` along
    x and y give H_xx, H_yy and sigma^2 = s^2 (1 / H_xx + 1 / H_yy) (s the residuals' robust
    scale), times 4 pi sigma_s^2 (the smoothing makes the residuals of about that many
    pixels one). Gauss-Newton's own error reads the curvature off the local gradients, which
    noise has too; a finite difference sees that the criterion of noise is flat."""
    gs = level.smooth
    got = _mirror_pairs(level, x, y, radius)
    if got is None:
        return math.inf
    px, py, gp = got

    def residual(dx: float, dy: float) -> np.ndarray:
        return gp - bilinear([gs], 2 * (x + dx) - px, 2 * (y + dy) - py)[0]

    r0 = residual(0.0, 0.0)
    s = 1.4826 * median(np.abs(r0 - median(r0))) + 1e-12
    k = 1.5 * s

    def cost(r: np.ndarray) -> float:
        a = np.abs(r)
        return float(np.sum(np.where(a <= k, 0.5 * a * a, k * a - 0.5 * k * k)))

    c0 = cost(r0)
    hxx = (cost(residual(h, 0.0)) + cost(residual(-h, 0.0)) - 2 * c0) / (h * h)
    hyy = (cost(residual(0.0, h)) + cost(residual(0.0, -h)) - 2 * c0) / (h * h)
    if hxx <= 0 or hyy <= 0:
        return math.inf
    return s * math.sqrt(1 / hxx + 1 / hyy) * math.sqrt(4 * math.pi) * level.sigma


def _ramp_bias(level: Level, x: float, y: float, radius: float) -> float:
    """The largest shift (level px) of the point-symmetry centre (x, y) fitted without a ramp
    over the pixels within ``radius`` that a flat field's ramp of RAMP_MAX in g across the
    level's longer side could cause; inf where too few pixels have a lit mirror.

    A ramp adds a . p to g and 2 a . (p - c) to the residual g(p) - g(2c - p); a centre
    shift d adds about 2 grad g(p) . d (grad g(2c - p) = -grad g(p) about a symmetric
    centre). Least squares takes d = -H^-1 sum grad g (p - c)^T a, H = sum grad g grad g^T,
    so the bound is |a| times the spectral norm of that 2 x 2 matrix: small where the
    pattern falls steeply about c (a diffuse pattern near the beam), large over a flat top
    (d about r / |dg/dr| there)."""
    got = _mirror_pairs(level, x, y, radius)
    if got is None:
        return math.inf
    px, py, _ = got
    _, gx, gy = bilinear(level.smooth_grad, px, py)
    grad = np.stack([gx, gy])
    h = grad @ grad.T
    if np.linalg.det(h) <= 1e-12 * max(np.trace(h) ** 2, 1e-300):
        return math.inf
    m = np.linalg.solve(h, grad @ np.stack([px - x, py - y]).T)
    return RAMP_MAX / max(level.g.shape) * float(np.linalg.norm(m, 2))


def _fine_symmetry(counts: np.ndarray, ok: np.ndarray, ring: Level, best: Candidate) -> Candidate:
    """A chosen gradient-lines, isotropy-search, point-symmetry or shadow-axis centre refined
    by the point symmetry of the pattern near it at the finest polish level
    (:func:`_fine_level`), kept where the optimum is sharp.

    Gauss-Newton on g(p) - g(2c - p) (:func:`refine_symmetry`, no ramp) over the lit
    pixels within FINE_WINDOW of the level's longer side of the centre, the ring level's
    beamstop shadows left out (:func:`_unshadowed`); its standard error
    (:func:`_sharpness`, the criterion's curvature) must be at most FINE_SIGMA frame px, the
    pairs correlate positively, and the centre move at most FINE_MOVE frame px. A centre
    fitted with a ramp free (RAMPED) is refined with it free here too where a ramp could
    move the ramp-free fit by more than FINE_SIGMA (:func:`_ramp_bias`): a broad top."""
    level = _unshadowed(_fine_level(ring, best.x, best.y), ring, max(counts.shape))
    radius = FINE_WINDOW * max(level.g.shape)
    start = level.from_frame(best.x, best.y)
    x, y, _, rho = refine_symmetry(level, start, ramp=False, radius=radius)
    if best.method in RAMPED and not (
        math.isfinite(x) and _ramp_bias(level, x, y, radius) * level.b <= FINE_SIGMA
    ):  # fitted with the ramp free: where a ramp could move the ramp-free fit, fit it here too
        x, y, _, rho = refine_symmetry(level, start, ramp=True, radius=radius)
    if not (math.isfinite(x) and math.isfinite(y) and rho > 0):
        return best
    sigma = _sharpness(level, x, y, radius)
    fx, fy = level.to_frame(x, y)
    if sigma * level.b > FINE_SIGMA or math.hypot(fx - best.x, fy - best.y) > FINE_MOVE:
        return best
    return replace(best, x=fx, y=fy, sigma=sigma * level.b)


def _stop_midline(
    counts: np.ndarray, ok: np.ndarray, ring: Level, best: Candidate
) -> StopAxis | None:
    """The midline (:func:`scattertag.beam.bars.stop_axis`) of the held stop's shadow
    whose axis (:func:`scattertag.beam.shadow.held_tips`) passes nearest the centre ``best``,
    traced from the foot of ``best`` on that axis."""
    tips = held_tips(ring.shadows(max(counts.shape)))
    if not tips:
        return None
    x, y, ux, uy = min(tips, key=lambda t: abs((best.x - t[0]) * t[3] - (best.y - t[1]) * t[2]))
    along = (best.x - x) * ux + (best.y - y) * uy
    return stop_axis(counts, ok, (x + along * ux, y + along * uy), math.atan2(uy, ux), ring.b)


def _axis_polish(counts: np.ndarray, ok: np.ndarray, ring: Level, best: Candidate) -> Candidate:
    """A chosen shadow-axis centre moved across the axis onto its stop's midline.

    A stop is held with its axis through the beam and is mirror-symmetric about it, so its
    two sides, traced at the frame's resolution (:func:`_stop_midline`), fix the beam across
    the axis to a fraction of a pixel; point symmetry, which the shadow deprives of partners
    on one side, placed it 2-9 px off the axis on 2000 px frames. The centre moves to the
    foot of its perpendicular on the midline when that lies within AXIS_MOVE of the frame's
    longer side; otherwise it is left as it is."""
    line = _stop_midline(counts, ok, ring, best)
    if line is None:
        return best
    ux, uy = math.cos(line.angle), math.sin(line.angle)
    along = (best.x - line.x) * ux + (best.y - line.y) * uy
    x, y = line.x + along * ux, line.y + along * uy
    if math.hypot(x - best.x, y - best.y) > AXIS_MOVE * max(counts.shape):
        return best
    return replace(best, x=x, y=y)


def _near_ridges(
    rd: Ridges, src: Level, b: int, shape: tuple[int, int], reach: float
) -> np.ndarray:
    """``shape`` (R, C) bool on the level of b x b blocks: pixels within ``reach`` of them
    (a square) of the ridge test's pixels ``rd.rows``, ``rd.cols`` on level ``src``."""
    shift = ((src.b - 1) / 2 - (b - 1) / 2) / b  # as src.to_frame, then from_frame at b
    x, y = rd.cols * (src.b / b) + shift, rd.rows * (src.b / b) + shift
    rows, cols = shape
    i, j = np.rint(y).astype(np.int64), np.rint(x).astype(np.int64)
    inside = (i >= 0) & (i < rows) & (j >= 0) & (j < cols)
    hit = np.zeros((rows, cols), dtype=bool)
    hit[i[inside], j[inside]] = True
    return box_any(hit, math.ceil(reach))


def _retrace(sums: np.ndarray, n: np.ndarray, b: int, ring: Level) -> tuple[Level, Ridges]:
    """The ring level's arcs traced again on the level of b x b blocks (``sums``, ``n``: its
    block sums of counts and of valid pixels), only within POLISH_BAND of the pixels that
    passed the ring level's ridge test: the level (built over the band's bounding box and
    POLISH_MARGIN about it, the shadow's floor of the whole level) and its ridges, in the
    whole level's pixels (its ``to_frame`` and ``from_frame`` depend on b alone). A ring
    level with under POLISH_FEW_ARCS arcs is traced again everywhere: rings narrower than
    its blocks show only at the finer level."""
    floor = finer_floor(ring, sums, n, b)  # the whole level's: level_from_sums' own
    if level_ridges(ring).count < POLISH_FEW_ARCS:
        level = level_from_sums(sums, n, b, 1.5, floor)
        return level, ridges(level)
    band = _near_ridges(level_ridges(ring), ring, b, sums.shape, POLISH_BAND)
    rows, cols = np.flatnonzero(band.any(axis=1)), np.flatnonzero(band.any(axis=0))
    if rows.size == 0:
        rows, cols = np.array([0, sums.shape[0] - 1]), np.array([0, sums.shape[1] - 1])
    r0, c0 = max(int(rows[0]) - POLISH_MARGIN, 0), max(int(cols[0]) - POLISH_MARGIN, 0)
    box = (
        slice(r0, int(rows[-1]) + POLISH_MARGIN + 1),
        slice(c0, int(cols[-1]) + POLISH_MARGIN + 1),
    )
    level = level_from_sums(sums[box], n[box], b, 1.5, floor)
    rd = ridges(level, near=band[box])
    return level, replace(rd, x=rd.x + c0, y=rd.y + r0, rows=rd.rows + r0, cols=rd.cols + c0)


def _concentric(counts: np.ndarray, ok: np.ndarray, ring: Level, best: Candidate) -> Candidate:
    """``best`` (a polished pattern centre), or the fit of the arcs traced at twice the ring
    level's resolution (:func:`polish_arcs`) started from it where that fit is tight (at
    least TIGHT_ARCS arcs, standard error at most TIGHT_SIGMA frame px), more precise than
    ``best`` (a smaller standard error) and moves it at most one ring-level block.

    Two estimates of one centre: the more precise is kept. Concentric arcs fix their centre
    to a fraction of a pixel; point symmetry and the gradient lines read the whole pattern,
    whose anisotropy moves them by pixels (seed 3's 113: gradient lines 5.0 px off at
    0.33 px, 4 arcs 0.48 px off at 0.30). Where the pattern's own polish is sharper, a fit
    through 3 or 4 arcs near TIGHT_SIGMA is the looser (seed 0's 496: symmetry 0.06 px off
    at 0.06, 3 arcs 3.9 px off at 0.48)."""
    if ring.b < 2:
        return best
    level, rd = polish_arcs(counts, ok, ring)
    x, y, sigma, arcs = fit_arcs(rd, level.from_frame(best.x, best.y))
    fx, fy = level.to_frame(x, y)
    sigma *= level.b
    if not (arcs >= TIGHT_ARCS and math.isfinite(fx + fy) and sigma < min(TIGHT_SIGMA, best.sigma)):
        return best
    if math.hypot(fx - best.x, fy - best.y) > ring.b:
        return best
    return replace(best, x=fx, y=fy, sigma=sigma)


def polish(
    counts: np.ndarray, ok: np.ndarray, best: Candidate, ring: Level, conf: float
) -> tuple[Candidate, float]:
    """A chosen isotropy-search centre refined by local point symmetry
    (:func:`_polish_symmetry`), it, a gradient-lines and a point-symmetry centre then at the
    finest level (:func:`_fine_symmetry`), a shadow-axis centre too, then onto its stop's
    midline (:func:`_axis_polish`); a chosen ring fit repeated at twice the ring level's
    resolution, then tried as tilted cones through the arcs the circles keep
    (:func:`_tilted`, :func:`_ring_arcs`); the candidate and its confidence.

    Large frames are traced at blocks of b = side / RING_SIDE pixels (8 at 2000 px); the
    arcs traced again at blocks of b / 2 (near the ring level's ridge pixels only,
    :func:`_retrace`) and fitted from the chosen centre give it to a fraction of a pixel.
    The new centre is kept if at least 2 arcs fit and it moves at most b (it refines, it
    does not jump). Point symmetry, gradient lines and the isotropy
    search gained nothing from the same step (their own estimator at twice the resolution)
    on the benchmark's frames.
    """
    if best.method == "isotropy":
        best = _polish_symmetry(ring, best)
    if best.method in FINE_FROM:
        return _concentric(counts, ok, ring, _fine_symmetry(counts, ok, ring, best)), conf
    if best.method == "axis":
        return _axis_polish(counts, ok, ring, _fine_symmetry(counts, ok, ring, best)), conf
    if best.method != "rings":
        return best, conf
    b_ring = ring.b
    b = b_ring // 2
    level, rd = polish_arcs(counts, ok, ring)
    if b >= 1:
        x, y, sigma, arcs = fit_arcs(rd, level.from_frame(best.x, best.y))
        fx, fy = level.to_frame(x, y)
        if arcs >= 2 and math.isfinite(fx + fy) and math.hypot(fx - best.x, fy - best.y) <= b_ring:
            best = replace(best, x=fx, y=fy, sigma=sigma * b)
    return _tilted(
        best, conf, level, _ring_arcs(rd, level.from_frame(best.x, best.y)), counts.shape
    )


def cone_candidate(
    best: Candidate, conf: float, level: Level, rd: Ridges, shape: tuple[int, int]
) -> tuple[Candidate, float] | None:
    """The ring fit ``best`` (confidence ``conf``) as tilted cones through all the arcs
    ``rd`` of ``level``, where :func:`_tilted` keeps the cones: (the cone, its confidence),
    else None. All: where circles fit a tilted detector's ellipses loosely, the arcs they
    fit worst (and drop, :func:`_ring_arcs`) are the most eccentric, which fix the tilt
    (seed 4's 155: 0.4 px through all 66 arcs, 1.6 px through the 48 the circles keep)."""
    cone, c = _tilted(best, conf, level, rd, shape)
    return (cone, c) if cone.method == "cone" else None


def _ring_arcs(rd: Ridges, start: tuple[float, float]) -> Ridges:
    """The arcs of ``rd`` that circles about a common centre keep (:func:`circles` from
    ``start``, level px, a radius per arc): those the cones are fitted through. An arc the
    circles drop (the bright rim about a stop's tip, a spot's curl) is no ring, and a cone's
    free tilt bends through it: on an untilted frame (seed 3's 282) such an arc made cones
    7.5 px off win over circles within 0.1 px."""
    if rd.count < 1:
        return rd
    alive = circles(rd, start, np.arange(rd.count), np.ones(rd.count, bool), 15)[3]
    if alive.all() or not alive.any():
        return rd
    return rd.only(alive)


def polish_arcs(counts: np.ndarray, ok: np.ndarray, ring: Level) -> tuple[Level, Ridges]:
    """The ring level's arcs traced at twice its resolution (:func:`_retrace`; the ring
    level itself when its blocks are single pixels): the level and its ridges, traced once
    (kept by the ring level)."""
    return ring.kept("polish", lambda: _traced_finer(counts, ok, ring))


def _traced_finer(counts: np.ndarray, ok: np.ndarray, ring: Level) -> tuple[Level, Ridges]:
    """:func:`polish_arcs` computed: the ring level itself when its blocks are single pixels,
    else the level at half its block size (from the sums the pyramid kept where it can)."""
    b = ring.b // 2
    if b < 1:
        return ring, level_ridges(ring)
    if ring.finer is not None:
        sums, n = ring.finer
    else:
        sums, n = block_sums(np.where(ok, counts, 0), b), block_sums(ok, b)
    return _retrace(sums, n, b, ring)


def frame_arcs(ring: Level, shape: tuple[int, int]) -> Arcs | None:
    """The frame's arcs for a refit with another frame's pose: those of the polish level
    when a ring fit was polished (:func:`polish_arcs`) and it shows 2 arcs, else the ring
    level's (rings broad for the finer level's noise show only there)."""
    traced = ring.held("polish")
    level, rd = traced if traced is not None else (ring, level_ridges(ring))
    arcs = Arcs.of(rd.x, rd.y, rd.w, rd.label, level.b, shape)
    if arcs is None and level is not ring:
        rd = level_ridges(ring)
        arcs = Arcs.of(rd.x, rd.y, rd.w, rd.label, ring.b, shape)
    return arcs


def _tilted(
    best: Candidate, conf: float, level: Level, rd: Ridges, shape: tuple[int, int]
) -> tuple[Candidate, float]:
    """A chosen ring fit replaced by the direct-beam point of tilted cones through the same
    arcs (:func:`scattertag.beam.cones.fit_cones`), method ``cone``, when the cones
    explain the arcs clearly better and fix the point; else a found ring fit off the frame
    that does not fix the beam made not found; the candidate and its confidence.

    A tilted detector's rings are conics whose centres drift from the beam as R^2
    tan(tau) / d, so the common centre of circles through them misses the beam. The cones
    are kept when their robust rms is at most CONE_RMS of the circles' on the same points
    (a clearly better model), their standard error at most CONE_SIGMA of the goal's
    tolerance t (2 px on the frame, 2 % of the diagonal off it), their tilt in CONE_TILT,
    their distance d at least CONE_NEAR and under D_BOUNDS[1] of the outermost arc's
    radius (not at the end of its range), and their point within CONE_REACH of the
    diagonal of the circles' centre, on the same side of the frame's edge. On seed 0 of
    the benchmark (500 frames) untilted frames with fits of 1-1.4 degrees at d under 0.1
    radii, or an rms ratio of 0.61-0.71, lost hits; the tilted frames gained were at
    0.06-0.59. Confidence: the rules' (a ring model with its arcs) times 0.5 + 0.5 P,
    P = 1 - exp(-t^2 / sigma^2) the chance that an error of standard deviation sigma
    stays within t.

    The cones are fitted with a 2 theta an arc and again with the pieces of one ring tied
    (one 2 theta a ring, arcs that fit no cone left out: :func:`cones.fit_cones` with ``tie``):
    a 2 theta an arc lets short arcs on opposite sides of a ring absorb a shift of the
    point, and radial streaks or a stop's rim bend the free tilt. The tied cones are kept
    on the same terms where they fix the pose (:func:`_posed`), and replace the untied
    ones where those are not kept or are over TIE_GAIN times less precise (seed 4 of the
    benchmark: 130, 4.0 -> 0.09 px; 162, 4.2 -> 0.6 px; b_tassone LaB6 keeps its untied
    cones, 4.4 px of standard error against 4.1 tied).

    A found ring fit off the frame whose cones are not kept gets at most RIVAL_CONFIDENCE
    (not found) when its own standard error exceeds t or the cones rival it
    (:func:`_rival`): short arcs of a tilted detector (b_tassone Run5 of real-dev, 8.9 %
    of the diagonal off at 0.7 before) fit circles about a point far from the beam nearly
    as well as cones about the beam. The cones then run to the end (no early give-up).
    """
    start = level.from_frame(best.x, best.y)
    diag = math.hypot(*shape)
    doubt = conf >= CONFIDENCE_THRESHOLD and not on_frame(best.x, best.y, shape)
    modes = ((False, math.inf if doubt else CONE_WORTH), (True, CONE_WORTH))
    fit, tied = cone_fits(rd.x, rd.y, rd.w, rd.label, start, modes)
    kept = None
    if fit is not None and fit.start_ratio <= CONE_WORTH:
        kept = _kept(fit, best, level, shape)
    if tied is not None and _posed(tied):
        got = _kept(tied, best, level, shape)
        if got is not None and (kept is None or TIE_GAIN * got[2] <= kept[2]):
            fit, kept = tied, got
    worth = fit is not None and fit.start_ratio <= CONE_WORTH
    if kept is None and worth and best.sigma >= SEARCH_SIGMA:
        searched = cones.searched_cones(rd.x, rd.y, rd.w, rd.label, start)
        if searched is not None and _posed(searched):
            got = _kept(searched, best, level, shape)
            if got is not None:
                fit, kept = searched, got
    if fit is not None and kept is not None:
        x, y, sigma = kept
        p = within(x, y, sigma, shape)
        pose = DetectorPose(x, y, fit.distance * level.b, fit.tilt, fit.axis)
        cone = replace(best, method="cone", x=x, y=y, sigma=sigma, pose=pose)
        return cone, conf * (0.5 + 0.5 * p)
    loose = best.sigma > 0.02 * diag or (fit is not None and _rival(fit, best, level, diag))
    return best, min(conf, RIVAL_CONFIDENCE) if doubt and loose else conf


def _kept(
    fit: cones.ConeFit, best: Candidate, level: Level, shape: tuple[int, int]
) -> tuple[float, float, float] | None:
    """The direct-beam point (x, y) and its standard error in frame px of cones through the
    arcs of the ring fit ``best`` that :func:`_tilted` keeps (``level`` the arcs' level),
    else None: robust rms at most CONE_RMS of the circles', standard error at most
    CONE_SIGMA of the goal's tolerance, tilt in CONE_TILT, d at least CONE_NEAR and under
    0.95 of the end of its range (``d_max``) radii, within CONE_REACH of the diagonal of the
    circles' centre, on the same side of the frame's edge."""
    x, y = level.to_frame(fit.x, fit.y)
    sigma = fit.sigma * level.b
    on = on_frame(x, y, shape)
    diag = math.hypot(*shape)
    tol = 2.0 if on else 0.02 * diag
    if (
        fit.rms <= CONE_RMS * fit.circle_rms
        and sigma <= CONE_SIGMA * tol
        and CONE_TILT[0] <= math.degrees(fit.tilt) <= CONE_TILT[1]
        and CONE_NEAR <= fit.distance / fit.radius < 0.95 * fit.d_max
        and math.hypot(x - best.x, y - best.y) <= CONE_REACH * diag
        and on == on_frame(best.x, best.y, shape)
    ):
        return x, y, sigma
    return None


def _posed(fit: cones.ConeFit) -> bool:
    """True if the cones fix the detector's pose: the tilt at least POSE_Z standard errors
    from none, log d to within POSE_LOG_D (one standard error), and at least POSE_RINGS
    rings that show (``ConeFit.rings``: 30 degrees of azimuth each). Cones that bend
    through a few arcs with a free distance and a tilt of a degree or two (an untilted
    frame's rings whose crests are 0.05 px off circles: seed 0's 81, 0.09 -> 1.83 px) fix
    neither; one ring and 2 degrees of another far out bend an untilted frame's cones 3 px
    off (seed 5's 227, 1.9 px untied)."""
    return (
        fit.tilt >= POSE_Z * fit.tilt_sigma
        and fit.log_d_sigma <= POSE_LOG_D
        and fit.rings >= POSE_RINGS
    )


def _rival(fit: cones.ConeFit, best: Candidate, level: Level, diag: float) -> bool:
    """True if cones through the arcs of the ring fit ``best`` (off the frame) explain them
    better (robust rms at most RIVAL_RMS of the circles'), with a tilt in
    CONE_TILT and a distance d of at least CONE_NEAR radii, and put the direct beam
    farther from the circles' centre than the goal's tolerance t (2 % of the diagonal
    ``diag``) plus RIVAL_Z of their own standard error sigma (beyond t even RIVAL_Z sigma
    nearer): a tilted detector with the beam elsewhere is a better answer, so the
    circles do not fix the beam."""
    x, y = level.to_frame(fit.x, fit.y)
    gap = math.hypot(x - best.x, y - best.y)
    return (
        fit.rms <= RIVAL_RMS * fit.circle_rms
        and CONE_TILT[0] <= math.degrees(fit.tilt) <= CONE_TILT[1]
        and fit.distance >= CONE_NEAR * fit.radius
        and gap > 0.02 * diag + RIVAL_Z * fit.sigma * level.b
    )
