"""Centres tried where the rules leave a frame not found, and better guesses of its position.

The glow beside a rod stop (:func:`glow_candidate`), a small ring or sharp peak at full
resolution (:func:`compact_candidate`), a bar's round end (:func:`outline_candidate`), rings
that only twice the ring level's resolution fixes (:func:`finer_rings_candidate`);
off the frame, a ring fit about which the rings show (:func:`arc_guess`), a circle through
a spotty ring's spots (:func:`spot_guess`) and the falloff with polarisation
(:func:`falloff_candidate`).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from scattertag.beam import compact, falloff, outline, spots
from scattertag.beam import glow as beam_glow
from scattertag.beam.boxes import EdgeDistance
from scattertag.beam.candidates import FAR_DIAGONALS, Candidate, by_method
from scattertag.beam.choice import TIGHT_ARCS, TIGHT_SIGMA, confidence
from scattertag.beam.evidence import CREST_Z, crest, local_isotropy, round_arc, round_arcs
from scattertag.beam.gradient import coherence, gradient_field
from scattertag.beam.grid import on_frame
from scattertag.beam.polish import cone_candidate, polish_arcs
from scattertag.beam.pyramid import Level, block_sums, dark_floor, level_from_sums, pixels
from scattertag.beam.radial import isotropy
from scattertag.beam.rings import arc_consensus, fit_arcs, level_ridges, ridges
from scattertag.beam.shadow import tip_starts

#: A centre the rules leave not found, from one of FALLOFF_FROM, off the frame or on it
#: within FALLOFF_EDGE of the diagonal of its border, moves to the fit of a radial profile
#: times the polarisation factor (:func:`falloff_candidate`) when that model leaves at most
#: 1 / FALLOFF_GAIN of the variance a circle model leaves there, at a detector distance of
#: at least FALLOFF_NEAR fine-level diagonals, off the frame.
FALLOFF_FROM, FALLOFF_GAIN, FALLOFF_NEAR = ("isotropy", "gradient", "symmetry"), 1.1, 0.05
FALLOFF_EDGE = 0.05
#: The falloff of a flat background (:func:`scattertag.beam.falloff.flat`: the solid angle
#: times the polarisation factor, no free profile) places the centre instead where it
#: leaves at most FLAT_RATIO times the variance the free profile leaves, at a detector
#: distance of FALLOFF_NEAR to FLAT_FAR fine-level diagonals (farther, its obliquity barely
#: varies over the frame), off the frame within the same reach.
FLAT_RATIO, FLAT_FAR = 1.01, 4.0
#: A choice inside the frame (or none) is refitted from the off-frame point where circles
#: explain the frame best (:func:`scattertag.beam.falloff.off_frame`), on the same terms,
#: the fit kept within FALLOFF_INSIDE_REACH diagonals of the frame's middle (a beam beside
#: the frame: farther ones, 1.4-1.9 diagonals on seed 0, came from on-frame beams).
FALLOFF_INSIDE_REACH = 0.75
#: A not-found ring fit or shadow-axis centre about which no rings show gives way to an
#: off-frame ring fit about which they do (:func:`arc_guess`), as FALLOFF_FROM's do; the
#: arcs' shared centres it asks are proposed by up to ARC_SEEDS arcs (:func:`_arc_fits`).
ARC_GUESS_WEAK = ("rings", "axis")
ARC_SEEDS = 8
#: Traced arcs that are curved circles about an off-frame ring fit (:func:`round_arcs`)
#: for :func:`arc_guess` to take it whatever the crest about it.
ROUND_ARCS = 2
#: A weak choice's guess gives way to an off-frame isotropy centre when the fine isotropy
#: about it is higher by PATTERN_MARGIN and the gradient lines back it within
#: PATTERN_AGREE of the diagonal or it lies within FALLOFF_INSIDE_REACH diagonals of the
#: frame's middle (:func:`_agreed_pattern`).
PATTERN_MARGIN, PATTERN_AGREE = 0.2, 0.01
#: A choice that :func:`arc_guess` leaves gives way to a circle off the frame through at
#: least SPOT_RING spots of the ring level (:func:`spot_guess`), at most SPOT_BRIGHT of it
#: bright between them, its centre's standard error at most SPOT_SIGMA of the diagonal
#: (half the goal's tolerance).
#: A weak choice about which rings show gives way only to one through SPOT_MANY spots (an
#: anisotropic ring's lobes give a crest of 4 about the beam; a ring fit through them 11).
SPOT_RING, SPOT_BRIGHT, SPOT_SIGMA, SPOT_MANY = 5, 0.6, 0.01, 10
#: On the frame such a circle is taken (:func:`_spots_on_frame`) through at least SPOT_ON
#: spots, its standard error at most SPOT_ON_TOL px (the goal's tolerance), where the ring
#: level's pattern about its centre is radial (:func:`local_isotropy` at least
#: SPOT_RADIAL), and where the guess lies farther than SPOT_ON_TOL px from it.
SPOT_ON, SPOT_ON_TOL, SPOT_RADIAL = 6, 2.0, 0.5
#: Dark valleys of the ring level (:func:`_valley_starts`): at least VALLEY_LENGTH level px
#: long, at most VALLEY_WIDTH level px (robust spread) off a straight line; the longest
#: VALLEY_MOST are fitted.
VALLEY_LENGTH, VALLEY_WIDTH, VALLEY_MOST = 8.0, 1.0, 3


def glow_candidate(
    counts: np.ndarray, ok: np.ndarray, ring: Level
) -> tuple[Candidate, float] | None:
    """The direct beam behind a rod beamstop that crosses it, from the glow beside the rod
    (:func:`scattertag.beam.glow.glow_of`, method ``glow``), and its confidence; None when
    no long shadow shows a glow.

    Rows and columns of zeros across the frame (module gaps not marked invalid) are left
    out first, so that they neither join the rod's shadow nor pass for a rod. Confidence
    0.7 (one estimator) times the evidence clip((c - GLOW_CONTRAST) / GLOW_CONTRAST, 0, 1)
    of the glow's contrast c times P = 1 - exp(-t^2 / sigma^2), t = 2 px.
    """
    gaps = beam_glow.gap_lines(counts, ok)
    if gaps.any():
        ok = ok & ~gaps
        use = np.where(ok, counts, 0)
        ring = level_from_sums(block_sums(use, ring.b), block_sums(ok, ring.b), ring.b, ring.sigma)
    if np.count_nonzero(ring.ok) < 64:
        return None  # a frame of zeros (a dark frame): no light, no glow
    shadows = ring.shadows(max(counts.shape))
    glows = [g for rod in beam_glow.rods(shadows) if (g := beam_glow.glow_of(counts, ok, rod))]
    if not glows:
        return None
    glow = max(glows, key=lambda g: g.contrast)
    c = beam_glow.GLOW_CONTRAST
    evidence = float(np.clip((glow.contrast - c) / c, 0.0, 1.0))
    conf = 0.7 * evidence * (1.0 - math.exp(-4.0 / max(glow.sigma**2, 1e-12)))
    lx, ly = ring.from_frame(glow.x, glow.y)
    iso = isotropy(pixels(ring), lx, ly)
    return Candidate("glow", glow.x, glow.y, glow.sigma, 0.0, iso, iso), conf


def _valley_starts(
    ring: Level, edge: EdgeDistance
) -> list[tuple[tuple[float, float], float, float]]:
    """(start, angle, half) of the longest straight dark valleys of the ring level (the
    ridges of -g, :func:`ridges`): a rod or bar too thin or too faint for the shadow mask.
    ``start`` (frame x, y) one block inside the end farther from the invalid blocks and the
    level's border (``edge``, distances in blocks),
    ``angle`` (radians) along the valley from there, ``half`` one block (px)."""
    neg = replace(ring, g=-ring.g, lit=ring.ok, dark=np.zeros_like(ring.ok), _inner={})
    if not ring.dark.any():  # lit is ok: -g smooths to the ring's smoothing negated, exactly
        gy, gx = ring.grad
        neg.__dict__.update(smooth=-ring.smooth, grad=(-gy, -gx))  # the cached properties
    rd = ridges(neg, int(VALLEY_LENGTH))
    # each valley's points in their order (a stable sort by label); a valley whose bounding
    # box's diagonal is under VALLEY_LENGTH is shorter than that along any axis
    order = np.argsort(rd.label, kind="stable")
    bounds = np.searchsorted(rd.label[order], np.arange(rd.count + 1))
    found = []
    for k in range(rd.count):
        sel = order[bounds[k] : bounds[k + 1]]
        x, y = rd.x[sel], rd.y[sel]
        if x.size < 3 or math.hypot(np.ptp(x), np.ptp(y)) * (1 + 1e-9) < VALLEY_LENGTH:
            continue
        dx, dy = x - x.mean(), y - y.mean()
        vals, vecs = np.linalg.eigh(np.cov(np.stack([dx, dy])))
        along = dx * vecs[0, 1] + dy * vecs[1, 1]
        length = float(along.max() - along.min())
        if length < VALLEY_LENGTH or math.sqrt(max(vals[0], 0.0)) > VALLEY_WIDTH:
            continue
        ends = [int(np.argmin(along)), int(np.argmax(along))]
        border = [edge[round(y[j]), round(x[j])] for j in ends]
        tip, other = ends if border[0] >= border[1] else ends[::-1]
        angle = math.atan2(y[other] - y[tip], x[other] - x[tip])
        fx, fy = ring.to_frame(float(x[tip]), float(y[tip]))
        b = float(ring.b)
        start = (fx + b * math.cos(angle), fy + b * math.sin(angle))
        found.append((x.size, (start, angle, b)))
    found.sort(key=lambda f: -f[0])
    return [f[1] for f in found[:VALLEY_MOST]]


def outline_candidate(
    counts: np.ndarray, ok: np.ndarray, ring: Level, valleys: bool = True
) -> tuple[Candidate, float] | None:
    """The beam at the round end of a bar or rod fitted to the counts about it
    (:func:`scattertag.beam.outline.fit_tip`, method ``outline``) from the tips of the
    largest shadows (:func:`scattertag.beam.shadow.tip_starts`) and of the dark valleys
    (:func:`_valley_starts`), each the end farther from the invalid blocks and the border
    (a stop held from outside reaches the frame's edge or a mask), the most precise that
    pins the beam (:func:`outline.pins`); its confidence 0.7 (one estimator) times
    P = 1 - exp(-t^2 / sigma^2), t = 2 px; ``valleys`` False: the shadows' tips only."""
    if np.count_nonzero(ring.ok) < 64:
        return None
    side = max(counts.shape)
    edge = EdgeDistance(ring.ok)
    starts = [
        (start, angle, max(half, float(ring.b)))
        for start, angle, half in tip_starts(ring.shadows(side), side, edge=edge)
    ]
    best = None
    if valleys:
        starts += _valley_starts(ring, edge)
    for start, angle, half in starts:
        tip = outline.fit_tip(counts, ok, start, angle, half)
        if (
            tip is not None
            and on_frame(tip.x, tip.y, counts.shape)
            and outline.pins(tip, half)
            and (best is None or tip.sigma < best.sigma)
        ):
            best = tip
    if best is None:
        return None
    conf = 0.7 * (1.0 - math.exp(-4.0 / max(best.sigma**2, 1e-12)))
    lx, ly = ring.from_frame(best.x, best.y)
    iso = isotropy(pixels(ring), lx, ly)
    return Candidate("outline", best.x, best.y, best.sigma, 0.0, iso, iso), conf


def finer_rings_candidate(
    counts: np.ndarray,
    ok: np.ndarray,
    levels: tuple[Level, Level, Level],
    cands: list[Candidate],
) -> tuple[Candidate, float] | None:
    """A tight ring fit of the polish level (blocks of half the ring level's, traced once
    for the polish, :func:`scattertag.beam.polish.polish_arcs`) about which the rings show,
    and its confidence as the rules count a ring fit among ``cands``
    (:func:`scattertag.beam.choice.confidence`); None when the ring level is the finest
    (blocks of 1 px) or shows no arc, or the fit is not tight (under 2 arcs, a standard
    error over TIGHT_SIGMA px), lies off the frame or shows no rings about it (:func:`crest`
    under CREST_Z); a looser fit through TIGHT_ARCS arcs or more, on the same terms, only as
    the tilted cones through its arcs that :func:`scattertag.beam.polish.cone_candidate`
    keeps, as precise as a tight fit (standard error at most TIGHT_SIGMA px).

    Rings a few ring-level blocks across, or narrower than its blocks, show there as one
    arc or none, or as arcs whose circles fix no centre (seed 3's 74: one arc, 83 px off;
    the polish level traces 11, 1.5 px), and the polish refines a chosen ring fit by one
    ring-level block at most (seed 0's 70: one arc 4.7 px off, two at the polish level
    0.2 px); a tilted detector's ellipses fit circles loosely and far off (seed 4's 155:
    sigma 1.3 px, 161 px off; its cones 0.4 px), and cones with a standard error of 0.8 px
    ended 2.7 px off (seed 0's 307). Tried on frames not found otherwise: the finer level's
    tracing is paid where the position is a guess."""
    coarse, fine, ring = levels
    if ring.b < 2 or level_ridges(ring).count < 1:
        return None
    level, rd = polish_arcs(counts, ok, ring)
    x, y, _, n = fit_arcs(rd, tie=False)  # a start for the fit below
    if not math.isfinite(x):
        return None
    x, y, sigma, n = fit_arcs(rd, (x, y))
    fx, fy = level.to_frame(x, y)
    sigma *= level.b
    tight = sigma <= TIGHT_SIGMA
    if not ((n >= 2 if tight else n >= TIGHT_ARCS) and on_frame(fx, fy, counts.shape)):
        return None
    if crest(ring, fx, fy) < CREST_Z:
        return None
    lx, ly = fine.from_frame(fx, fy)
    iso = isotropy(pixels(coarse), *coarse.from_frame(fx, fy))
    coh = coherence(gradient_field(fine), lx, ly)
    c = Candidate("rings", fx, fy, sigma, coh, iso, isotropy(pixels(fine), lx, ly), arcs=n)
    others = [k for k in cands if not k.extra and k.method != "rings"]
    conf = confidence(c, others, math.hypot(*counts.shape), ring)
    if tight:
        return c, conf
    cone = cone_candidate(c, conf, level, rd, counts.shape)
    return cone if cone is not None and cone[0].sigma <= TIGHT_SIGMA else None


def compact_starts(
    counts: np.ndarray, ok: np.ndarray, ring: Level
) -> tuple[float, list[tuple[float, float]]]:
    """:func:`compact.starts` of the frame (its largest count, its saturated cores and the
    ``ring`` level's seeds), found once a frame (kept by the ring level): the give-up test
    of ``predict``'s estimate asks whether there are any, the compact fallback starts there."""
    return ring.kept("compact", lambda: compact.starts(counts, ok, ring.g, ring.lit, ring.b))


def compact_candidate(
    counts: np.ndarray,
    ok: np.ndarray,
    levels: tuple[Level, Level, Level],
    cands: list[Candidate],
    best: Candidate | None,
    conf: float,
) -> tuple[Candidate | None, float]:
    """(best, conf), or a compact feature about the beam at full resolution
    (:mod:`scattertag.beam.compact`, method ``compact``) when it is found: the most
    confident (:func:`compact.confidence`, the fine-level isotropy about each feature
    against the most isotropic of ``cands``), if above ``conf``."""
    _, fine, ring = levels
    if np.count_nonzero(ring.ok) < 64:
        return best, conf
    floor = dark_floor(ring.means[ring.ok])
    begun = compact_starts(counts, ok, ring)
    feats = compact.find(counts, ok, ring.g, ring.lit, ring.b, floor, begun)
    if not feats:
        return best, conf
    pf = pixels(fine)
    top = max((c.fine_isotropy for c in cands), default=0.0)
    scored = []
    for f in feats:
        iso = isotropy(pf, *fine.from_frame(f.x, f.y))
        cand = Candidate("compact", f.x, f.y, f.sigma, 0.0, iso, iso, rho=f.rho, span=f.cover)
        scored.append((compact.confidence(f, iso, top), f.snr, cand))
    c, _, cand = max(scored, key=lambda s: s[:2])
    return (cand, c) if c > conf else (best, conf)


def arc_guess(
    best: Candidate | None, cands: list[Candidate], ring: Level, shape: tuple[int, int]
) -> Candidate | None:
    """A not-found choice from FALLOFF_FROM (or none) gives way to the most precise ring
    fit (not ``extra``) off the frame, within FALLOFF_INSIDE_REACH diagonals of its middle,
    whose standard error is at most the goal's tolerance (2 % of the diagonal) and about
    which the rings show (:func:`crest` at least CREST_Z): one arc's curvature fixes the
    distance that the isotropy search and the gradient lines slide along, even where its
    isotropy is lower than theirs (seed 0, frame 137: 0.079 lower, beyond
    :func:`_arc_off_frame`'s reach). A not-found choice of ARC_GUESS_WEAK (a ring fit or
    a shadow-axis centre) about which no rings show gives way so too, and to the arcs' own
    shared centres besides (:func:`_arc_fits`). Any choice gives way, on the same terms,
    to a ring fit or shared centre about which at least ROUND_ARCS traced arcs are curved
    circles (:func:`round_arcs`): concentric arcs fix the centre where a broad ring's
    crest is low (seed 0, frame 56: two pieces of a halo, crest 9.4) or arcs of a textured
    ring are short (seed 3, frame 224: four arcs of 0.15-0.3 rad). A choice none of this
    moves (nor :func:`_agreed_pattern`) may give way to a circle through spots
    (:func:`spot_guess`; a weak choice about which rings show, only to one through
    SPOT_MANY). Only the position changes: the caller keeps its confidence."""
    if best is not None and best.method not in FALLOFF_FROM + ARC_GUESS_WEAK:
        return best
    weak = best is not None and best.method in ARC_GUESS_WEAK
    if weak and best is not None and (shown := crest(ring, best.x, best.y)) >= CREST_Z:
        return spot_guess(best, ring, shape, SPOT_MANY, shown)
    rows, cols = shape
    diag = math.hypot(rows, cols)
    own = [c for c in cands if c.method == "rings" and not c.extra]
    shared = _arc_fits(own, ring)
    fits = [
        c
        for c in shared
        if not on_frame(c.x, c.y, shape)
        and c.sigma <= 0.02 * diag
        and math.hypot(c.x - (cols - 1) / 2, c.y - (rows - 1) / 2) <= FALLOFF_INSIDE_REACH * diag
    ]
    # a pattern choice takes the arcs' shared centres only where arcs are round about them
    by_crest = shared if weak else own
    for fit in sorted(fits, key=lambda c: c.sigma):
        if any(fit is c for c in by_crest) and crest(ring, fit.x, fit.y) >= CREST_Z:
            return fit
        if round_arcs(ring, fit.x, fit.y) >= ROUND_ARCS:
            return fit
    if weak and best is not None:
        agreed = _agreed_pattern(best, cands, shape)
        if agreed is not best:
            return agreed
    return spot_guess(best, ring, shape)


def spot_guess(
    best: Candidate | None,
    ring: Level,
    shape: tuple[int, int],
    least: int = SPOT_RING,
    shown: float = 0.0,
) -> Candidate | None:
    """``best``, or the circle through most spots of the ring level
    (:func:`scattertag.beam.spots.spot_circle`), method ``spots``, where its centre lies
    off the frame within FALLOFF_INSIDE_REACH diagonals of its middle, at least ``least``
    spots lie on it, at most SPOT_BRIGHT of it is bright (spots with dark gaps between
    them, not a continuous ridge cut into pieces) and its standard error is at most
    SPOT_SIGMA of the diagonal: a ring of a few large grains, or an anisotropic ring's
    lobes, beside the frame (seed 4, frame 139: 6 spots at one radius, 0.06 % of the
    diagonal; seed 5, frame 18: 19 lobes, 0.45 %) where the isotropy search and the
    gradient lines read the background's slope. A circle whose centre lies on the frame is
    taken on :func:`_spots_on_frame`'s terms (where rings show about ``best``, a crest of
    ``shown``, only if they show more about the circle's centre): a spotty ring
    about a beam on the frame, which the ridges trace as short pieces or not at all, while
    point symmetry and the isotropy search read bright spots or a halo elsewhere."""
    c = spots.spot_circle(ring)
    if c is None or c.bright > SPOT_BRIGHT:
        return best
    rows, cols = shape
    diag = math.hypot(rows, cols)
    x, y = ring.to_frame(c.x, c.y)
    sigma = c.sigma * ring.b
    middle = math.hypot(x - (cols - 1) / 2, y - (rows - 1) / 2)
    spot = Candidate("spots", x, y, sigma, 0.0, 0.0, 0.0, arcs=c.count)
    if on_frame(x, y, shape):
        return spot if _spots_on_frame(best, spot, ring, shown) else best
    if c.count < least or sigma > SPOT_SIGMA * diag or middle > FALLOFF_INSIDE_REACH * diag:
        return best
    return spot


def _spots_on_frame(best: Candidate | None, spot: Candidate, ring: Level, shown: float) -> bool:
    """True if the circle through spots ``spot`` (on the frame) is a better guess than
    ``best``: through at least SPOT_ON spots, its standard error at most SPOT_ON_TOL px,
    the ring level's pattern about its centre radial (:func:`local_isotropy` at least
    SPOT_RADIAL), ``best`` farther than SPOT_ON_TOL px from it (nearer, the circle confirms
    a guess more precise than the spots' centroids), and where ``shown`` (the crest of the
    rings about ``best``; 0: not asked) the rings' crest about its centre higher still
    (seed 3's 209: an axis choice 0.1 px off with a crest of 281, the spots 2.7 px off with
    224); a ring fit ``best`` stays where one of its arcs is a circle about it
    (:func:`round_arc`, seed 5's 184: 0.1 px, the spots 3.8 px off). Seeds 0, 1, 3, 4 and
    5 of the benchmark: 8 frames not found placed within 2 px (seed 5's 154: a disk stop's
    spotty ring, 310 -> 0.7 px), none lost."""
    if spot.arcs < SPOT_ON or spot.sigma > SPOT_ON_TOL:
        return False
    if best is not None and math.hypot(best.x - spot.x, best.y - spot.y) <= SPOT_ON_TOL:
        return False
    if best is not None and best.method == "rings" and round_arc(ring, best.x, best.y):
        return False  # an arc is a circle about the ring fit: its rings are about it
    if shown > 0.0 and crest(ring, spot.x, spot.y) <= shown:
        return False
    return bool(local_isotropy(ring, spot.x, spot.y) >= SPOT_RADIAL)


def _agreed_pattern(best: Candidate, cands: list[Candidate], shape: tuple[int, int]) -> Candidate:
    """``best`` (a not-found ring fit or shadow-axis centre about which no rings show), or
    the isotropy search's centre off the frame where the image is more isotropic about it
    than about ``best`` by PATTERN_MARGIN (fine isotropy) and either the gradient lines'
    meeting point lies within PATTERN_AGREE of the diagonal of it (half the goal's
    tolerance) or it lies within FALLOFF_INSIDE_REACH diagonals of the frame's middle (the
    reach of the other guesses off the frame): two readings of the pattern's curvature
    agree where arcs that are no rings about their common centre do not (seed 5, frame
    262: 0.63 against a 5-arc fit's 0.23), and a frame far more isotropic about a point
    beside it than about arcs on it has its beam there (seed 3, frame 3: 0.96 against a
    tight two-arc fit's 0.58, the gradient lines 54 % of the diagonal away; a ring frame
    whose isotropy search ran off, seed 4's 46, lands 1.9 diagonals out)."""
    rows, cols = shape
    diag = math.hypot(rows, cols)
    by = by_method([c for c in cands if not c.extra])
    iso, grad = by.get("isotropy"), by.get("gradient")
    if (
        iso is None
        or on_frame(iso.x, iso.y, shape)
        or iso.fine_isotropy < best.fine_isotropy + PATTERN_MARGIN
    ):
        return best
    if grad is not None and math.hypot(iso.x - grad.x, iso.y - grad.y) <= PATTERN_AGREE * diag:
        return iso
    near = math.hypot(iso.x - (cols - 1) / 2, iso.y - (rows - 1) / 2) <= FALLOFF_INSIDE_REACH * diag
    return iso if near else best


def _arc_fits(fits: list[Candidate], ring: Level) -> list[Candidate]:
    """The ring fits ``fits`` and the centres that the ring level's arcs share, each
    proposed by any clean arc whatever its angular span (:func:`arc_consensus` with
    min_span 0, up to ARC_SEEDS of them, through any number of arcs): the arcs of a ring
    beside the frame may span a few degrees each, and the common fit through all arcs is
    pulled off by arcs about other points (seed 3, frame 30: a window's edge; one arc's
    own circle lies 0.0 % of the diagonal from the beam, the common fit 42 %)."""
    rd = level_ridges(ring)
    shared = arc_consensus(rd, 2.0 * math.hypot(*ring.g.shape), ARC_SEEDS, 1.0, 0.0, ARC_SEEDS)
    fits = list(fits)
    for x, y, s, n in shared:
        fx, fy = ring.to_frame(x, y)
        fits.append(Candidate("rings", fx, fy, s * ring.b, 0.0, 0.0, 0.0, arcs=n))
    return fits


def falloff_candidate(
    fine: Level, best: Candidate | None, shape: tuple[int, int]
) -> Candidate | None:
    """A centre off the frame or near its border moved to the fit of the falloff about it,
    a radial profile times the polarisation factor plus an offset
    (:mod:`scattertag.beam.falloff`), method ``falloff``; a centre farther inside (or
    none: the frame's middle) moved to the fit from the off-frame point where circles
    explain the frame best, if circles there explain it at least as well. ``best``
    unchanged when the fit is not clearly better than a circle model about it
    (FALLOFF_GAIN), puts the detector nearer than FALLOFF_NEAR, or lands on the frame or
    farther than FAR_DIAGONALS (from inside: FALLOFF_INSIDE_REACH) from its middle. The
    falloff of a flat background (:func:`scattertag.beam.falloff.flat`, no free profile)
    moves it instead where it explains the level about as well as the free profile
    (FLAT_RATIO) at a distance that bends its obliquity over the frame (FLAT_FAR): where
    the free profile's R^2 is flat along the radius, the obliquity's own profile fixes the
    distance (seed 0, frame 436: the isotropy search 163 %, the free fit 160 %, the flat
    background 1.2 % of the diagonal off).

    Off the frame the circle models (isotropy, gradient lines) slide along the radius (or
    stop at the border), and the polarisation of a WAXS frame bends its contours across
    the azimuth; a falloff rising to the border puts point symmetry and the isotropy
    search inside it. Only the position changes: the frame stays not found (the caller's
    confidence).
    """
    rows, cols = shape
    diag = math.hypot(rows, cols)
    middle = ((cols - 1) / 2, (rows - 1) / 2)
    x0, y0 = middle if best is None else (best.x, best.y)
    edge = min(x0 + 0.5, cols - 0.5 - x0, y0 + 0.5, rows - 0.5 - y0)
    reach = FAR_DIAGONALS
    start = fine.from_frame(x0, y0)
    if edge <= FALLOFF_EDGE * diag:
        fit = falloff.fit(fine.g, fine.lit, start)
    else:
        reach = FALLOFF_INSIDE_REACH
        fit = falloff.off_frame(fine.g, fine.lit, start)
    if fit is None:
        return best
    level_diag = math.hypot(*fine.g.shape)
    flat = falloff.flat(fine.g, fine.lit, fit, start)
    if (
        flat is not None
        and (1.0 - flat.r2) <= FLAT_RATIO * (1.0 - fit.r2)
        and FALLOFF_NEAR * level_diag <= flat.distance <= FLAT_FAR * level_diag
        and (at := _beside(fine, flat, shape, reach)) is not None
    ):
        return _moved(best, at)
    if fit.distance < FALLOFF_NEAR * level_diag:
        return best
    if (1.0 - fit.r2_start) < FALLOFF_GAIN * (1.0 - fit.r2):
        return best
    at = _beside(fine, fit, shape, reach)
    return best if at is None else _moved(best, at)


def _beside(
    fine: Level, fit: falloff.Falloff, shape: tuple[int, int], reach: float
) -> tuple[float, float] | None:
    """The frame position (x, y) of a falloff ``fit`` on the level ``fine`` where it lies off
    a frame of ``shape`` (rows, cols) within ``reach`` diagonals of its middle, else None."""
    rows, cols = shape
    x, y = fine.to_frame(fit.x, fit.y)
    far = math.hypot(x - (cols - 1) / 2, y - (rows - 1) / 2) > reach * math.hypot(rows, cols)
    return None if on_frame(x, y, shape) or far else (x, y)


def _moved(best: Candidate | None, at: tuple[float, float]) -> Candidate:
    """``best`` moved to ``at`` (frame x, y) as method ``falloff``, not precise (sigma inf)."""
    if best is None:
        return Candidate("falloff", at[0], at[1], math.inf, 0.0, 0.0, 0.0)
    return replace(best, method="falloff", x=at[0], y=at[1], sigma=math.inf)
