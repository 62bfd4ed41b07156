"""Beam centre found from the image, with a confidence; a given centre checked against it.

Four estimators work on a pyramid of the log-scaled frame
(``g = log(1 + counts)``, block means over valid pixels):

* **point symmetry** (on the frame): small-angle patterns obey I(q) = I(-q), so the frame
  reflected through the centre c, g(2c - p), matches g(p). The masked normalised
  correlation of g with its reflection, for every c at once, is four FFT convolutions
  (the reflection through c is a convolution evaluated at 2c); its peak is the coarse
  centre, refined by Gauss-Newton on the residual g(p) - g(2c - p).
* **gradient lines** (anywhere, also off the frame): the gradient of an isotropic pattern
  points along the radius, so the lines through the pixels along their gradients meet
  at the centre; the robustly weighted least-squares meeting point is a 2 x 2 solve
  (iteratively reweighted: beamstop edges, streaks and texture are outliers).
* **ring arcs** (rings and arcs, also off the frame): ridge points of the radial profile
  about the current centre are grouped by ring and fitted with circles of a common
  centre (Gauss-Newton on the radial residuals); a RANSAC over the arcs (each clean arc's
  own circle proposes a centre, the arcs concentric about it are fitted together) gives
  the ranker the centres that several arcs share when other arcs pull the common fit off.
  A chosen ring fit is tried as tilted cones (:mod:`scattertag.beam.cones`): on a tilted
  detector rings are conics whose centres drift from the beam, and the direct-beam point
  of the cones replaces the circles' centre when the cones fit the arcs clearly better.
* **beamstop** (on the frame): a disk beamstop, or a bar's round end, is centred on the
  beam; a circle fitted to the round edge of its shadow (:mod:`scattertag.beam.shadow`),
  or a bar's end fitted as a half disk on a bar of constant width, gives the centre
  whatever the sample shows; loose circles (less of the edge, a larger
  standard error) and the axis of a long shadow (a wedge's or a bar's, searched for the
  most point-symmetric centre near its tip) are extra candidates.

Three fallbacks are tried only on frames the rules leave "not found": grazing incidence
(the mirror column and the specular geometry along it, :mod:`scattertag.beam.grazing`), the
direct beam's glow beside a rod stop that crosses the beam (:mod:`scattertag.beam.glow`)
and a small ring or sharp peak about the beam at full resolution
(:mod:`scattertag.beam.compact`; the fallbacks' candidates: :mod:`scattertag.beam.fallbacks`).
A not-found centre off the frame (or at its border) is moved to the fit of the falloff about
it with the polarisation factor of a flat detector (:mod:`scattertag.beam.falloff`).

Rules choose among the estimators' centres and give a confidence (agreement among them
times the isotropy about the centre); a logistic ranker trained on simulated frames
(:mod:`scattertag.beam.ranker`) sees those and the extra ones, and replaces the rules'
choice when it is sure of another (:mod:`scattertag.beam.choice`). Below
:data:`CONFIDENCE_THRESHOLD` the centre should be treated as not found.

Here: the public API (:func:`estimate_beam_center`, :func:`check_beam_center`, the glance
at a given centre) and the estimate's order of steps (:func:`_estimate`). The steps live
in :mod:`scattertag.beam`'s modules, one concept each: ``pyramid`` (valid pixels, the
levels), ``gradient``, ``symmetry``, ``rings`` (ridges, arcs, circle fits), ``shadow``
(beamstops), ``candidates`` (the estimators run on a frame), ``evidence`` (what the radial
profile about a point shows), ``choice`` (rules, ranker, confidence), ``grazing``,
``fallbacks``, ``polish`` (and tilted ``cones``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from scattertag.beam.boxes import nonzero2d
from scattertag.beam.candidates import FAR_DIAGONALS, Candidate, before_search, isotropy_search
from scattertag.beam.choice import (
    CONFIDENCE_THRESHOLD,
    INDEPENDENT,
    LONE,
    PATTERN,
    choose_unwindowed,
    polished_confidence,
    tight,
    unshaded_confidence,
)
from scattertag.beam.evidence import pinned
from scattertag.beam.fallbacks import (
    FALLOFF_FROM,
    arc_guess,
    compact_candidate,
    compact_starts,
    falloff_candidate,
    finer_rings_candidate,
    glow_candidate,
    outline_candidate,
)
from scattertag.beam.gradient import gradient_field, lines_meet
from scattertag.beam.grazing import GRAZING_RHO, below_horizon, grazing_candidate, mirror_column
from scattertag.beam.grid import on_frame
from scattertag.beam.polish import frame_arcs, polish
from scattertag.beam.pose import Arcs, DetectorPose, refit, tolerance
from scattertag.beam.pyramid import (
    COARSE_SIDE,
    FINE_SIDE,
    MIN_COARSE_SIDE,
    MIN_FINE_SIDE,
    RING_SIDE,
    Level,
    block_sums,
    level_from_sums,
    pixels,
    pyramid,
    reduction,
    valid_counts,
)
from scattertag.beam.radial import Pixels, climb, isotropy

#: A given centre agrees with the image if within this many pixels of the image's best
#: centre (or within 3 standard errors of it, or 2 % of the frame diagonal off the frame).
AGREE_PX = 5.0
#: A grazing beam whose y spreads at most GUESS_SPREAD px (4 x the goal's 2 px) is a
#: better guess than a centre the rules leave not found, even at a lower confidence.
GUESS_SPREAD = 8.0
#: A found ring fit and a stop's end that pins the beam (:func:`_stop_end`) agree within
#: this many px (the goal's tolerance).
AGREE_RING = 2.0
#: A given centre about which the fine level's isotropy R^2 reaches this, at a local
#: maximum, agrees without the full estimate (:func:`agrees_at_a_glance`).
GLANCE_ISOTROPY = 0.3
#: A settled set-up's centre offered to a later frame (``settled=True``): the R^2 peak may
#: lie within GLANCE_SETTLED_PEAK level pixels (b / 2: 2 px at 1000 x 1000, the goal) if no
#: point GLANCE_RING level pixels away, in 8 directions, is more isotropic.
GLANCE_SETTLED_PEAK, GLANCE_RING = 0.5, 16.0
#: A settled centre the glance does not confirm is contradicted by the frame
#: (:func:`settled_glance`) when a point farther than the goal's tolerance is more isotropic
#: by GLANCE_MARGIN in R^2 (the level pure noise stays under), or by half what the centre
#: leaves unexplained when that is less, or when at least GLANCE_SHADOW_BLOCKS blocks of the
#: fine level are beamstop shadow and none lies within GLANCE_SHADOW_REACH level pixels
#: of a centre on the frame (the beam lies behind its stop; a block blurs the shadow's edge).
GLANCE_MARGIN, GLANCE_SHADOW_BLOCKS, GLANCE_SHADOW_REACH = 0.02, 4, 3.0
#: The search for that point meets at most this many of the coarse level's gradient lines
#: (the strongest) and scores R^2 on as many of its pixels (a regular subsample; the two
#: R^2 compared use them all).
GLANCE_SEARCH_PIXELS = 4096
#: With ``guess=False`` a frame not settled by the candidates before the isotropy search
#: whose choice so far is not found is given up there (:func:`_nothing_to_find`) when the
#: fine isotropy R^2 about every candidate is under NOTHING_ISOTROPY (no pattern about any
#: point), or when no fallback has what it reads and no two independent estimators lie
#: within NEAR_AGREE times the agreement tolerance of each other (what the isotropy search
#: and the ranker could turn into agreement; the ranker's wider agreement feature).
NOTHING_ISOTROPY, NEAR_AGREE = 0.1, 5.0
#: :func:`settled_glance`'s verdicts.
AGREES, UNINFORMATIVE, CONTRADICTED = "agrees", "uninformative", "contradicted"


@dataclass(frozen=True)
class BeamCenterEstimate:
    """A beam centre found from the image.

    Attributes
    ----------
    x, y : centre in pixels, x along columns, y along rows, (0, 0) the centre of the first
        pixel; it may lie off the frame.
    confidence : in [0, 1]; below :data:`CONFIDENCE_THRESHOLD` the centre is not found.
    method : which estimator gave the centre (``symmetry``, ``gradient``, ``rings``,
        ``cone`` (rings of a tilted detector), ``beamstop``, ``axis``, ``isotropy``,
        ``grazing`` (mirror column and specular geometry), ``glow`` (the direct beam's
        glow beside a rod stop), ``compact`` (a small ring or sharp peak about the beam at
        full resolution), ``falloff`` (an off-frame centre, not found, from the
        falloff with polarisation), ``pose`` (cones of another frame's pose through this
        frame's arcs, :func:`scattertag.beam.pose.refit`), ``none``).
    on_frame : True if the centre falls on the detector, -0.5 <= x < cols - 0.5 and
        -0.5 <= y < rows - 0.5.
    sigma : standard error of the centre in pixels (inf when unknown).
    pose : the detector's pose (direct-beam point, distance, tilt) when ``method`` is
        ``cone``, else None: other frames of the same set-up may be refitted with it.
    arcs : the frame's traced arcs (at least 2) when its centre is a ring fit or not
        found, else None: what a refit with another frame's pose needs
        (:func:`scattertag.beam.pose.refit`).
    """

    x: float
    y: float
    confidence: float
    method: str
    on_frame: bool
    sigma: float = math.inf
    pose: DetectorPose | None = None
    arcs: Arcs | None = field(default=None, compare=False, repr=False)

    @property
    def found(self) -> bool:
        """True if the confidence reaches :data:`CONFIDENCE_THRESHOLD`."""
        return self.confidence >= CONFIDENCE_THRESHOLD


@dataclass(frozen=True)
class BeamCenterCheck:
    """A given beam centre compared with the image's own best centre.

    Attributes
    ----------
    agrees : False only if the image's centre is found and the given one is far from it.
    distance : pixels from the given centre to the image's best centre.
    score : radial coherence of the gradient field about the given centre divided by that
        about the best centre, in [0, 1] (1: the given centre explains the image as well).
    best : the image's own estimate.
    """

    agrees: bool
    distance: float
    score: float
    best: BeamCenterEstimate


def valid_pixels(counts: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(rows, cols) bool: finite, non-negative, not the all-bits-set value, and in ``valid``.

    Negative values mark Pilatus gaps; 2^32 - 1 (2^16 - 1, 2^8 - 1) marks Eiger gaps; a
    maximum reached by at least 4 pixels and over 20 times the mean is saturation, dropped.
    """
    return valid_counts(counts, valid)[0]


def estimate_beam_center(
    counts: np.ndarray,
    valid: np.ndarray | None = None,
    hint: tuple[float, float] | None = None,
    guess: bool = True,
    pose: DetectorPose | None = None,
) -> BeamCenterEstimate:
    """The beam centre (x, y) of a frame, in pixels, with a confidence in [0, 1].

    Parameters
    ----------
    counts : (rows, cols) array of counts, any real dtype; negative, non-finite and
        all-bits-set values are invalid.
    valid : (rows, cols) bool, True where a pixel may be used, or None.
    hint : (x, y) a centre from elsewhere (a header), in pixels, or None; it is scored
        with the image's own candidates and wins only if it explains the image better.
    guess : also refine the position of a centre that is not found (the polish, the
        off-frame falloff fit, ~100 ms where it runs); False for callers that discard such
        positions
        (``predict`` makes the frame an error row; a check accepts any given centre then).
    pose : the detector's pose from another frame of the same set-up (a cone fit's,
        ``BeamCenterEstimate.pose``), or None: a ring fit or a centre not found is then
        refitted as cones of that distance and tilt through the frame's arcs, the
        direct-beam point free, and replaced when that stands
        (:func:`scattertag.beam.pose.refit`, method ``pose``).

    Returns
    -------
    BeamCenterEstimate
        x along columns, y along rows, (0, 0) the centre of the first pixel; the centre
        may lie off the frame. Confidence below :data:`CONFIDENCE_THRESHOLD` means the
        centre could not be found.
    """
    counts = np.asarray(counts)
    ok, zeroed = valid_counts(counts, valid)
    levels = pyramid(counts, ok, zeroed) if np.count_nonzero(ok) >= 256 else None
    est = _estimate(counts, ok, levels, hint, guess)
    posed = None if pose is None else refit(est, pose)
    return est if posed is None else posed


def _estimate(
    counts: np.ndarray,
    ok: np.ndarray,
    levels: tuple[Level, Level, Level] | None,
    hint: tuple[float, float] | None = None,
    guess: bool = True,
) -> BeamCenterEstimate:
    """:func:`estimate_beam_center` of a frame's valid pixels ``ok`` and its pyramid
    ``levels`` (:func:`pyramid`; None when under 256 pixels are valid)."""
    if levels is None:
        return _estimate_of(None, 0.0, None, counts.shape)
    found, settled = before_search(counts, ok, levels)
    if not (settled or guess or hint is not None):
        given_up = _nothing_to_find(counts, ok, levels, found.out)
        if given_up is not None:  # its position is discarded (guess=False): no search for it
            return _estimate_of(*given_up, levels[2], counts.shape)
    if not settled:
        isotropy_search(found, hint)
    cands = found.out
    best, conf = _pinned_choice(counts, ok, levels, cands)
    best, conf = _grazing_beam(counts, ok, levels[2], best, conf)
    best, conf = _stop_end(counts, ok, levels[2], best, conf)
    if conf < CONFIDENCE_THRESHOLD:
        best, conf = _fallbacks(counts, ok, levels, cands, best, conf)
    if best is not None:
        if guess or conf >= CONFIDENCE_THRESHOLD:
            # the polish refines a position and never raises the confidence: that of a
            # centre not found is refined only where the caller keeps it (``guess``)
            best, conf = polish(counts, ok, best, levels[2], conf)
        conf = polished_confidence(best, conf, cands, levels[2], counts.shape)
        conf = unshaded_confidence(best, conf, cands, counts, ok)
    if guess and conf < CONFIDENCE_THRESHOLD:
        best = arc_guess(best, cands, levels[2], counts.shape)
    if guess and conf < CONFIDENCE_THRESHOLD and (best is None or best.method in FALLOFF_FROM):
        best = falloff_candidate(levels[1], best, counts.shape)
    return _estimate_of(best, conf, levels[2], counts.shape)


def _estimate_of(
    best: Candidate | None, conf: float, ring: Level | None, shape: tuple[int, int]
) -> BeamCenterEstimate:
    """The estimate of the choice ``best`` at ``conf`` on a frame of ``shape`` (the frame's
    middle, ``none``, when None), with the ``ring`` level's arcs where a refit with another
    frame's pose may use them (a ring fit, a centre not found)."""
    if best is None or ring is None:
        return BeamCenterEstimate((shape[1] - 1) / 2, (shape[0] - 1) / 2, 0.0, "none", True)
    on = on_frame(best.x, best.y, shape)
    arcs = None
    if best.method == "rings" or conf < CONFIDENCE_THRESHOLD:
        arcs = frame_arcs(ring, shape)
    return BeamCenterEstimate(best.x, best.y, conf, best.method, on, best.sigma, best.pose, arcs)


def _nothing_to_find(
    counts: np.ndarray, ok: np.ndarray, levels: tuple[Level, Level, Level], cands: list[Candidate]
) -> tuple[Candidate | None, float] | None:
    """The choice among ``cands`` (the candidates before the isotropy search) and its
    confidence when the frame will not be found, else None.

    Not found so far (:func:`choose_unwindowed`), and either no pattern about any candidate
    (fine isotropy under NOTHING_ISOTROPY) or nothing the later steps read: no two
    independent estimators near each other (:func:`_readings_meet`), no mirror line (the
    grazing beam's column, correlation under GRAZING_RHO), no saturated core and no local
    peak (:func:`compact_starts`: what the compact fallback starts from). On seeds 0, 1,
    3, 4 and 5 of the benchmark, 50 of 702 frames not found so far
    ended found (grazing 19, compact 13, outline 6, rings 6, 6 others); it gives up 249
    frames, none of them (lab notebook, "Giving up where the position is discarded")."""
    ring = levels[2]
    best, conf = choose_unwindowed(cands, counts.shape, ring)
    if conf >= CONFIDENCE_THRESHOLD:
        return None
    if max((c.fine_isotropy for c in cands), default=0.0) < NOTHING_ISOTROPY:
        return best, conf
    if _readings_meet(cands, counts.shape) or mirror_column(ring)[1] >= GRAZING_RHO:
        return None
    if compact_starts(counts, ok, ring)[1]:
        return None
    return best, conf


def _readings_meet(cands: list[Candidate], shape: tuple[int, int]) -> bool:
    """True if two of ``cands`` from different independent estimators (INDEPENDENT, not
    ``extra``) lie within NEAR_AGREE x max(2 px, 0.5 % of the diagonal) of each other."""
    reach = NEAR_AGREE * max(2.0, 0.005 * math.hypot(*shape))
    plain = [c for c in cands if c.method in INDEPENDENT and not c.extra]
    return any(
        a.method != b.method and math.hypot(a.x - b.x, a.y - b.y) <= reach
        for i, a in enumerate(plain)
        for b in plain[i + 1 :]
    )


def _pinned_choice(
    counts: np.ndarray, ok: np.ndarray, levels: tuple[Level, Level, Level], cands: list[Candidate]
) -> tuple[Candidate | None, float]:
    """The choice among ``cands`` (:func:`choose_unwindowed`) and its confidence; a found
    pattern centre (PATTERN) that nothing in the image pins (:func:`pinned`) gives way to
    the choice among the others where that one is found (and pinned, if a pattern centre),
    else it is kept as a guess (LONE)."""
    shape, ring = counts.shape, levels[2]
    best, conf = choose_unwindowed(cands, shape, ring)
    if (
        conf < CONFIDENCE_THRESHOLD
        or best is None
        or best.method not in PATTERN
        or pinned(counts, ok, ring, best)
    ):
        return best, conf
    # a ranker override must not hide the rules' found ring fit: the others chosen among
    alt, alt_conf = choose_unwindowed([c for c in cands if c is not best], shape, ring)
    if (
        alt is not None
        and alt_conf >= CONFIDENCE_THRESHOLD
        and (alt.method not in PATTERN or pinned(counts, ok, ring, alt))
    ):
        return alt, alt_conf
    return best, min(conf, LONE)


def _grazing_beam(
    counts: np.ndarray, ok: np.ndarray, ring: Level, best: Candidate | None, conf: float
) -> tuple[Candidate | None, float]:
    """(best, conf) seen as grazing incidence: a centre not found gives way to the mirror
    column's beam (:func:`grazing_candidate`) when that is found or a better guess (its y
    spread within GUESS_SPREAD px); a found one, but a tight ring fit, to the half pattern's
    beam under a horizon that crosses its column below it (:func:`below_horizon`)."""
    if conf < CONFIDENCE_THRESHOLD:
        graze = grazing_candidate(counts, ok, ring)
        if graze is not None and (graze[1] > conf or graze[0].sigma <= GUESS_SPREAD):
            return graze[0], max(graze[1], conf)  # the better guess, found or not
        return best, conf
    if best is None or tight(best):
        return best, conf  # concentric arcs fix the direct beam, which no horizon lies below
    return below_horizon(counts, ok, ring, best) or (best, conf)


def _stop_end(
    counts: np.ndarray, ok: np.ndarray, ring: Level, best: Candidate | None, conf: float
) -> tuple[Candidate | None, float]:
    """(best, conf): a found ring fit gives way to a bar's or rod's end fitted to the counts
    (:func:`outline_candidate`, from the shadows' tips) that pins the beam over AGREE_RING px
    from it: a stop is centred on the beam whatever the sample scatters, and arcs bent by
    a tilt, texture or a stop's edge move a ring fit by a few px."""
    if conf < CONFIDENCE_THRESHOLD or best is None or best.method != "rings":
        return best, conf
    end = outline_candidate(counts, ok, ring, valleys=False)
    if end is None or end[1] < CONFIDENCE_THRESHOLD:
        return best, conf
    if math.hypot(end[0].x - best.x, end[0].y - best.y) <= AGREE_RING:
        return best, conf  # they agree: the ring fit stays
    return end


def _fallbacks(
    counts: np.ndarray,
    ok: np.ndarray,
    levels: tuple[Level, Level, Level],
    cands: list[Candidate],
    best: Candidate | None,
    conf: float,
) -> tuple[Candidate | None, float]:
    """(best, conf) of a frame not found, or what the fallbacks see instead, each tried while
    the frame is still not found: a rod stop's glow, a compact feature at full resolution,
    a bar's outline, rings that only the polish level fixes."""
    glow = glow_candidate(counts, ok, levels[2])
    if glow is not None and glow[1] > conf:
        best, conf = glow
    if conf < CONFIDENCE_THRESHOLD:
        best, conf = compact_candidate(counts, ok, levels, cands, best, conf)
    if conf < CONFIDENCE_THRESHOLD:
        tip = outline_candidate(counts, ok, levels[2])
        if tip is not None and tip[1] > conf:
            best, conf = tip
    if conf < CONFIDENCE_THRESHOLD:
        finer = finer_rings_candidate(counts, ok, levels, cands)
        if finer is not None:
            best, conf = finer[0], max(finer[1], conf)  # the better guess, found or not
    return best, conf


def _glance_level(
    counts: np.ndarray, valid: np.ndarray | None
) -> tuple[Level, np.ndarray, np.ndarray] | None:
    """The fine level of a frame (:func:`pyramid`'s, b frame pixels a level pixel) and its
    (R, C) block sums of counts and of valid pixels; None under 256 valid pixels."""
    counts = np.asarray(counts)
    ok, zeroed = valid_counts(counts, valid)
    if np.count_nonzero(ok) < 256:
        return None
    side, short = max(counts.shape), min(counts.shape)
    b = reduction(side, short, RING_SIDE, MIN_FINE_SIDE)
    b *= reduction(side // b, short // b, FINE_SIDE, MIN_FINE_SIDE)
    every = ok.all()
    if zeroed is None:  # float counts (integer ones come zeroed from valid_counts)
        zeroed = counts if every else np.where(ok, counts, 0)
    sums = block_sums(zeroed, b)
    n = np.full(sums.shape, float(b * b)) if every else block_sums(ok, b)
    return level_from_sums(sums, n, b, 1.5), sums, n


def _agrees(level: Level, center: tuple[float, float], settled: bool) -> bool:
    """:func:`agrees_at_a_glance` on the frame's fine ``level``."""
    px = pixels(level)
    cx, cy = level.from_frame(float(center[0]), float(center[1]))
    mid = isotropy(px, cx, cy)
    if not mid >= GLANCE_ISOTROPY:
        return False
    peak = GLANCE_SETTLED_PEAK if settled else 0.25  # level px: b / 2 or b / 4
    for dx, dy in ((1.0, 0.0), (0.0, 1.0)):
        lo, hi = isotropy(px, cx - dx, cy - dy), isotropy(px, cx + dx, cy + dy)
        curve = lo + hi - 2 * mid
        if curve >= 0 or abs(0.5 * (lo - hi) / curve) > peak:
            return False
    return not settled or _isotropy_peak(px, cx, cy, mid, GLANCE_RING)


def agrees_at_a_glance(
    counts: np.ndarray,
    valid: np.ndarray | None,
    center: tuple[float, float],
    settled: bool = False,
) -> bool:
    """True if the frame is plainly isotropic about the given centre (x, y), so that
    :func:`check_beam_center` need not look further; False says nothing either way.

    On the fine level (:func:`pyramid`, b frame pixels a level pixel), the isotropy R^2
    (:func:`isotropy`) about the centre must reach :data:`GLANCE_ISOTROPY` and peak within
    b / 4 of it along x and along y (parabola through offsets of +-b). Checked against the
    full check on 600 simulated frames and centres and on the 21 real ones of real-dev and
    the examples, shifted by 3-200 px: it never accepted a centre the full check refused,
    and accepted about 40 % of the true centres. ~12 ms at 1000 x 1000 against ~100 ms for
    the full check; frames with fewer than 256 valid pixels agree (no centre is found in
    them). ``settled`` (a set-up's centre offered to its later frames): the peak may lie
    within b / 2 (:data:`GLANCE_SETTLED_PEAK`) but R^2 about the centre must be at least
    that about the 8 points :data:`GLANCE_RING` level pixels away (a flat R^2 landscape,
    which any centre nearby would pass, confirms nothing).
    """
    fine = _glance_level(counts, valid)
    return fine is None or _agrees(fine[0], center, settled)


def settled_glance(
    counts: np.ndarray, valid: np.ndarray | None, center: tuple[float, float]
) -> str:
    """A set-up's settled centre (x, y) offered to a later frame of it: :data:`AGREES` (the
    settled glance of :func:`agrees_at_a_glance` accepts it), :data:`CONTRADICTED` (the
    frame shows another centre: :func:`_shadow_elsewhere`, :func:`_isotropic_elsewhere`;
    worth a full estimate) or :data:`UNINFORMATIVE` (neither: a flat, weak or dark frame,
    which a full estimate would not place either)."""
    fine = _glance_level(counts, valid)
    if fine is None or _agrees(fine[0], center, True):
        return AGREES
    level, sums, n = fine
    shape = np.shape(counts)
    x, y = float(center[0]), float(center[1])
    if _shadow_elsewhere(level, x, y, shape) or _isotropic_elsewhere(level, sums, n, x, y, shape):
        return CONTRADICTED
    return UNINFORMATIVE


def _shadow_elsewhere(level: Level, x: float, y: float, shape: tuple[int, int]) -> bool:
    """True if the level shows a beamstop's shadow (:data:`GLANCE_SHADOW_BLOCKS` dark blocks)
    that cannot hide the beam at frame (x, y): on the frame, no dark block within
    :data:`GLANCE_SHADOW_REACH` level pixels of it; off the frame, a shadow (connected, that
    many blocks) that does not touch the level's border (a stop held on the frame)."""
    dark = level.dark
    if np.count_nonzero(dark) < GLANCE_SHADOW_BLOCKS:
        return False
    if on_frame(x, y, shape):
        cx, cy = level.from_frame(x, y)
        iy, ix = nonzero2d(dark)
        return float(np.min(np.hypot(ix - cx, iy - cy))) > GLANCE_SHADOW_REACH
    labels, count = ndimage.label(dark)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    inside = np.ones(count + 1, bool)
    inside[edge] = False
    return bool(np.any(inside[1:] & (sizes[1:] >= GLANCE_SHADOW_BLOCKS)))


def _isotropic_elsewhere(
    fine: Level, sums: np.ndarray, n: np.ndarray, x: float, y: float, shape: tuple[int, int]
) -> bool:
    """True if the coarse level (:func:`pyramid`'s, from the fine level's block ``sums`` and
    ``n``) is clearly more isotropic about another point than about frame (x, y): the
    isotropy search of :func:`candidates` (a climb from the gradient lines' meeting point,
    both on :data:`GLANCE_SEARCH_PIXELS` samples) ends within FAR_DIAGONALS of the middle,
    farther than the goal's tolerance from (x, y), with R^2 at least :data:`GLANCE_MARGIN`
    (or half of 1 - R^2 about (x, y)) higher."""
    rows, cols = shape
    k = reduction(max(sums.shape), min(sums.shape), COARSE_SIDE, MIN_COARSE_SIDE)
    coarse = (
        level_from_sums(block_sums(sums, k), block_sums(n, k), fine.b * k, 1.0) if k > 1 else fine
    )
    field = gradient_field(coarse, GLANCE_SEARCH_PIXELS)
    sx, sy = lines_meet(field)
    if not (math.isfinite(sx) and math.isfinite(sy)):
        return False
    cx, cy, _ = climb(pixels(coarse, GLANCE_SEARCH_PIXELS), (sx, sy), 4.0, 0.5)
    fx, fy = coarse.to_frame(cx, cy)
    far = FAR_DIAGONALS * math.hypot(rows, cols)
    if math.hypot(fx - (cols - 1) / 2, fy - (rows - 1) / 2) > far:
        return False  # never an estimate (:func:`candidates`)
    if math.hypot(fx - x, fy - y) <= tolerance(x, y, shape):
        return False
    px = pixels(coarse)
    best, mid = isotropy(px, cx, cy), isotropy(px, *coarse.from_frame(x, y))
    return best >= mid + min(GLANCE_MARGIN, 0.5 * (1.0 - mid))


def _isotropy_peak(px: Pixels, cx: float, cy: float, mid: float, reach: float) -> bool:
    """True if no point ``reach`` level pixels from (cx, cy), at 8 angles 45 deg apart, has
    an isotropy R^2 above ``mid`` (that about (cx, cy))."""
    for a in np.arange(8) * (math.pi / 4):
        if isotropy(px, cx + reach * math.cos(a), cy + reach * math.sin(a)) > mid:
            return False
    return True


def check_beam_center(
    counts: np.ndarray, valid: np.ndarray | None, center: tuple[float, float]
) -> BeamCenterCheck:
    """Compare a given centre (x, y) in pixels with the image's own best centre.

    The given centre agrees unless the image's centre is found (confidence at least
    :data:`CONFIDENCE_THRESHOLD`) and lies farther than max(AGREE_PX, 3 sigma, 2 % of
    the diagonal when off the frame) from it. ``score`` is the isotropy (adjusted R^2 of
    a radial profile, fine level) about the given centre over that about the best centre,
    clipped to [0, 1].
    """
    counts = np.asarray(counts)
    ok, zeroed = valid_counts(counts, valid)
    levels = pyramid(counts, ok, zeroed) if np.count_nonzero(ok) >= 256 else None
    best = _estimate(counts, ok, levels, guess=False)  # a centre not found agrees anyway
    gx, gy = float(center[0]), float(center[1])
    distance = math.hypot(gx - best.x, gy - best.y)
    rows, cols = counts.shape
    tol = max(AGREE_PX, 3.0 * best.sigma if math.isfinite(best.sigma) else AGREE_PX)
    if not best.on_frame:
        tol = max(tol, 0.02 * math.hypot(rows, cols))
    score = 1.0
    if levels is not None:
        fine = levels[1]
        px = pixels(fine)
        ref = isotropy(px, *fine.from_frame(best.x, best.y))
        if ref > 0:
            score = float(np.clip(isotropy(px, *fine.from_frame(gx, gy)) / ref, 0.0, 1.0))
    agrees = not best.found or distance <= tol
    return BeamCenterCheck(agrees, distance, score, best)
