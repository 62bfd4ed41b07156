"""The choice among the candidates and its confidence.

The rules (:func:`_choose_by_rules`, :func:`confidence`), the ranker's override
(:func:`_choose`), the middles of windows left out (:func:`choose_unwindowed`) and the
confidence of the polished choice (:func:`polished_confidence`). Below
:data:`CONFIDENCE_THRESHOLD` a centre is not found.
"""

from __future__ import annotations

import math

import numpy as np

from scattertag.beam import ranker
from scattertag.beam.candidates import Candidate, by_method
from scattertag.beam.disks import SHADOW_T, shadow_contrast
from scattertag.beam.evidence import CREST_Z, crest, plateau, round_arc
from scattertag.beam.grid import on_frame
from scattertag.beam.pose import within
from scattertag.beam.pyramid import Level

#: Estimates with a confidence below this are "centre not found".
CONFIDENCE_THRESHOLD = 0.3
#: A ring fit with at least 2 arcs and at most this standard error (pixels) is trusted.
RING_SIGMA_PX = 2.0
#: A ring fit through at least this many concentric arcs is evidence enough on its own.
MANY_ARCS = 5
#: Off the frame, a ring fit (even through one arc) within this fraction of the diagonal of
#: the chosen centre, and explaining the image at most OFF_ARC_ISOTROPY (fine isotropy)
#: worse, replaces it (:func:`_arc_off_frame`).
OFF_ARC_REACH, OFF_ARC_ISOTROPY = 0.1, 0.05
#: Estimators that look at different evidence; agreement among them is confidence.
INDEPENDENT = ("rings", "symmetry", "gradient", "beamstop")
#: The ranker's choice replaces the rules' at this P(hit), if higher than the P(hit) of
#: the rules' choice by RANK_MARGIN (:func:`_choose`).
RANK_OVERRIDE, RANK_MARGIN = 0.5, 0.1
#: A tight ring fit: at least this many arcs and a standard error (px) at most this
#: (:func:`_tight_rings`).
TIGHT_ARCS, TIGHT_SIGMA = 3, 0.5
#: Methods whose evidence is the pattern about their centre (its symmetry, its isotropy):
#: found only where the image pins the centre (:func:`pinned`).
PATTERN = ("symmetry", "gradient", "isotropy")
#: The confidence of one estimator alone (no backer, no evidence of its own): not found.
LONE = 0.25
#: The most confidence of a found centre that the image pins only weakly (:func:`_weak`):
#: still found (at least CONFIDENCE_THRESHOLD), but under the 0.5 a confident centre has.
WEAK = 0.45
#: A pattern centre (PATTERN) or a compact feature about which the radial profile explains
#: under this share of the fine level's variance (its fine isotropy R^2) is pinned weakly
#: (:func:`_weak`).
WEAK_ISOTROPY = 0.5


def _choose_by_rules(cands: list[Candidate], shape: tuple[int, int]) -> Candidate | None:
    """The candidate to trust on a frame of ``shape`` (rows, cols).

    A beamstop's round edge (:mod:`scattertag.beam.shadow`) is trusted unless a tight
    ring fit (3 arcs, sigma at most 0.5 px) is there: on 350 simulated frames 69 of the 70
    kept shadow circles lay within 2.1 px of the true centre (the other, 378 px off, lost
    to a tight ring fit).

    Among point symmetry, gradient lines and the isotropy search, the one with the largest
    fine-level isotropy (point symmetry, the most precise on the frame, when within 0.01 of
    it). A ring fit with at least 2 arcs replaces it when its standard error is at most
    0.5 px, or at most RING_SIGMA_PX unless it explains the image clearly worse (fine
    isotropy and gradient coherence both lower by more than 0.02), or at most RING_SIGMA_PX
    through MANY_ARCS arcs when no second estimator backs the other choice (grazing
    incidence: arcs cut by the horizon in a frame that is isotropic about nothing). A loose
    fit through 2 arcs never replaces a choice that another estimator backs and that lies
    outside its 3 sigma. A centre so chosen that lies off the frame gives way to a ring fit
    off the frame, even through one arc, within OFF_ARC_REACH of the diagonal that explains
    the image about as well (:func:`_arc_off_frame`).
    """
    diag = math.hypot(*shape)
    by = by_method(cands)
    stop = min((c for c in cands if c.method == "beamstop"), key=lambda c: c.sigma, default=None)
    rings = by.get("rings")
    if stop is not None and not (rings is not None and rings.arcs >= 3 and rings.sigma <= 0.5):
        return stop
    others = [by[m] for m in ("symmetry", "gradient", "isotropy") if m in by]
    best = max(others, key=lambda c: c.fine_isotropy) if others else None
    sym = by.get("symmetry")
    if sym is not None and best is not None and sym.fine_isotropy >= best.fine_isotropy - 0.01:
        best = sym
    rings = by.get("rings")
    if rings is None:
        return best
    if best is None:
        return rings if rings.arcs >= 2 and rings.sigma <= RING_SIGMA_PX else None
    if _contradicted(rings, best, cands, diag):
        return _arc_off_frame(best, rings, shape)
    if (
        rings.arcs >= 2
        and rings.sigma <= RING_SIGMA_PX
        and (
            rings.sigma <= 0.5
            or rings.fine_isotropy >= best.fine_isotropy - 0.02
            or rings.coherence >= best.coherence - 0.02
            or (rings.arcs >= MANY_ARCS and _backers(best, cands, diag) == 0)
        )
    ):
        return rings
    return _arc_off_frame(best, rings, shape)


def _arc_off_frame(best: Candidate, rings: Candidate, shape: tuple[int, int]) -> Candidate:
    """``rings`` instead of ``best`` if both lie off the frame, within OFF_ARC_REACH of the
    diagonal of each other, and the ring fit's fine isotropy is at most OFF_ARC_ISOTROPY
    below best's. Off the frame the isotropy search and the gradient lines are weak along
    the radius (nearly straight arcs fit as well a little nearer or farther), while even one
    arc's curvature fixes the distance (tuned on 150 frames of seed 1: one gained, none
    lost; seed 0: two gained)."""
    off = not on_frame(best.x, best.y, shape) and not on_frame(rings.x, rings.y, shape)
    near = math.hypot(rings.x - best.x, rings.y - best.y) <= OFF_ARC_REACH * math.hypot(*shape)
    if off and near and rings.fine_isotropy >= best.fine_isotropy - OFF_ARC_ISOTROPY:
        return rings
    return best


def _consensus_off_frame(
    best: Candidate | None, cands: list[Candidate], shape: tuple[int, int]
) -> Candidate | None:
    """``best``, or, when it is no ring fit and lies off the frame, the most isotropic
    consensus ring fit (``extra``, TIGHT_ARCS arcs or more) that :func:`_arc_off_frame`
    prefers to it: off the frame the arcs' curvature fixes the distance that the isotropy
    search and the gradient lines slide along, and a consensus leaves out the arcs about
    other points that pull the common fit away (seed 0, frame 347: 9 px against the
    common fit's 165 and the isotropy search's 101)."""
    if best is None or best.method == "rings" or on_frame(best.x, best.y, shape):
        return best
    fits = [c for c in cands if c.extra and c.method == "rings" and c.arcs >= TIGHT_ARCS]
    for fit in sorted(fits, key=lambda c: -c.fine_isotropy):
        if _arc_off_frame(best, fit, shape) is fit:
            return fit
    return best


def _contradicted(rings: Candidate, best: Candidate, cands: list[Candidate], diag: float) -> bool:
    """True if an estimator other than the rings backs ``best``, none lies within
    max(2 px, 3 sigma) of the ring fit, and the fit is either loose (2 arcs, sigma > 0.5 px)
    and over 3 sigma from ``best``, or not tight (sigma > 0.5 px), over max(3 sigma, 2 px)
    from ``best`` and explaining the image no better (fine isotropy): the arcs of n-fold
    rings and the edges of rod and disk beamstops make ring fits a few pixels off with a
    small standard error."""
    if rings.sigma <= 0.5:
        return False
    gap = math.hypot(rings.x - best.x, rings.y - best.y)
    if rings.arcs >= 3 and (gap <= 2.0 or best.fine_isotropy < rings.fine_isotropy):
        return False
    others = [c for c in cands if c.method != "rings"]
    reach = max(2.0, 3.0 * rings.sigma)
    backed = any(
        c.method in INDEPENDENT and math.hypot(c.x - rings.x, c.y - rings.y) <= reach
        for c in others
    )
    return gap > 3.0 * rings.sigma and _backers(best, others, diag) >= 1 and not backed


def _backers(best: Candidate, cands: list[Candidate], diag: float) -> int:
    """How many independent estimators (rings, symmetry, gradient) other than ``best``'s
    lie within max(2 px, 0.5 % of the diagonal) of it; the isotropy search is not backed
    by the candidate it started from (it climbs a few pixels from it)."""
    tol = max(2.0, 0.005 * diag)
    return len(
        {
            c.method
            for c in cands
            if c.method in INDEPENDENT
            and c.method not in (best.method, best.seed)
            and math.hypot(c.x - best.x, c.y - best.y) <= tol
        }
    )


def confidence(
    best: Candidate, cands: list[Candidate], diag: float, ring: Level | None = None
) -> float:
    """Confidence in [0, 1] of the chosen centre: agreement times evidence.

    Agreement: how many independent estimators (rings, symmetry, gradient) other than the
    chosen one lie within max(2 px, 0.5 % of the diagonal) of it: none 0.25, one 0.7, two
    1; a ring fit with at least 3 arcs counts as one if the rings show about its centre
    (a crest of the radial profile, :func:`crest` on the ``ring`` level, at least
    CREST_Z; not asked when ``ring`` is None or another estimator backs it). Evidence:
    clip((R^2 - 0.02) / 0.1, 0, 1) with R^2 the fine-level isotropy about the centre
    (noise gives |R^2| < 0.02), or 1 for a ring fit with at least 3 arcs (arcs are
    evidence themselves).
    """
    if ring is not None:  # a ring fit backs a centre only where its rings show
        tol = max(2.0, 0.005 * diag)
        cands = [
            c
            for c in cands
            if c.method != "rings"
            or c.method == best.method
            or math.hypot(c.x - best.x, c.y - best.y) > tol
            or crest(ring, c.x, c.y) >= CREST_Z
        ]
    near = _backers(best, cands, diag)
    strong = _stands_alone(best)
    if (
        strong
        and best.method == "rings"
        and near == 0
        and ring is not None
        and crest(ring, best.x, best.y) < CREST_Z
    ):
        return 0.25  # arcs that are not rings about this centre: one estimator alone
    if strong:
        near = max(near, 1)
    agree = (0.25, 0.7, 1.0)[min(near, 2)]
    return float(agree * _evidence(best))


def _stands_alone(c: Candidate) -> bool:
    """True for a ring fit through at least 3 arcs and a beamstop circle: evidence in
    themselves, whatever the isotropy about them."""
    return (c.method == "rings" and c.arcs >= 3) or c.method == "beamstop"


def _evidence(c: Candidate) -> float:
    """1 for a candidate that stands alone (:func:`_stands_alone`), else clip((R^2 - 0.02)
    / 0.1, 0, 1) with R^2 the fine-level isotropy about it (noise gives |R^2| < 0.02)."""
    if _stands_alone(c):
        return 1.0
    return float(np.clip((c.fine_isotropy - 0.02) / 0.1, 0.0, 1.0))


def _choose(
    cands: list[Candidate], shape: tuple[int, int], ring: Level | None = None
) -> tuple[Candidate | None, float]:
    """The candidate to trust on a frame of ``shape`` (rows, cols) and its confidence.

    The rules (:func:`_choose_by_rules`, :func:`confidence`) see the candidates of the
    original estimators; the ranker (:mod:`scattertag.beam.ranker`, a logistic
    model trained on simulated frames) sees them all, the ``extra`` ones too (the axes of
    long shadows, loose beamstop circles). The ranker's
    choice replaces the rules' when its P(hit) reaches RANK_OVERRIDE and exceeds the
    P(hit) it gives the rules' choice by RANK_MARGIN; its P times the rules' evidence
    (:func:`_evidence`: a centre about which the image is no more isotropic than noise is
    not found, whoever chose it) is then the confidence. A found choice of the rules gives
    way only to an override that is found too (not demoted by :func:`_lone` or its
    evidence below CONFIDENCE_THRESHOLD). When
    the rules find nothing (confidence under CONFIDENCE_THRESHOLD), the ranker's best
    candidate on the frame, if it scores higher than theirs, is the better guess of the
    position; the frame stays not found, with the rules' confidence. (Off the frame the
    ranker is weak: 34 % of off-frame benchmark frames have any candidate within the goal.)
    ``ring`` is the ring level, where :func:`confidence` looks for the rings of a ring fit.
    Off the frame a consensus of arcs may replace the rules' choice
    (:func:`_consensus_off_frame`), and the choice gives way to a tight ring fit that agrees
    with it (:func:`_tight_rings`, the confidence kept).
    """
    diag = math.hypot(*shape)
    plain = [c for c in cands if not c.extra]
    best = _consensus_off_frame(_choose_by_rules(plain, shape), cands, shape)
    conf = confidence(best, plain, diag, ring) if best is not None else 0.0
    p = ranker.probabilities(cands, shape)
    if p.size == 0:
        return best, conf
    k = int(np.argmax(p))
    mine = max((float(q) for c, q in zip(cands, p) if c is best), default=0.0)
    if p[k] >= RANK_OVERRIDE and p[k] - mine >= RANK_MARGIN:
        over = float(p[k]) * _evidence(cands[k])
        if _lone(cands[k], plain, diag, ring):
            over = min(over, LONE)
        if over >= CONFIDENCE_THRESHOLD or conf < CONFIDENCE_THRESHOLD:
            best, conf = cands[k], over  # a found choice gives way only to a found one
    elif conf < CONFIDENCE_THRESHOLD and p[k] > mine and on_frame(cands[k].x, cands[k].y, shape):
        best = cands[k]  # a better guess; still not found
    return _tight_rings(best, cands, diag), conf


def _lone(c: Candidate, cands: list[Candidate], diag: float, ring: Level | None) -> bool:
    """True for a pattern candidate (PATTERN) that no independent estimator among
    ``cands`` backs (:func:`_backers`) and about which no rings show (:func:`crest`
    under CREST_Z on the ``ring`` level): one estimator alone, as the rules count it,
    whoever chose it."""
    if c.method not in PATTERN or _backers(c, cands, diag) > 0:
        return False
    return ring is None or crest(ring, c.x, c.y) < CREST_Z


def _tight_rings(best: Candidate | None, cands: list[Candidate], diag: float) -> Candidate | None:
    """``best``, or the most precise tight ring fit (TIGHT_ARCS arcs, standard error at most
    TIGHT_SIGMA px; the consensus fits too) within max(2 px, 0.5 % of the diagonal) of it
    when best is neither such a fit nor a beamstop circle. Concentric arcs fix their centre
    to a fraction of a pixel; point symmetry and the gradient lines that back them read the
    whole pattern, whose anisotropy and ramps move them by pixels (seed 0: 2.0 px against
    the consensus fit's 0.84)."""
    if best is None or best.method == "beamstop" or tight(best):
        return best
    tol = max(2.0, 0.005 * diag)
    near = [c for c in cands if tight(c) and math.hypot(c.x - best.x, c.y - best.y) <= tol]
    return min(near, key=lambda c: c.sigma, default=best)


def tight(c: Candidate) -> bool:
    """True for a ring fit through TIGHT_ARCS arcs with a standard error of TIGHT_SIGMA px."""
    return c.method == "rings" and c.arcs >= TIGHT_ARCS and c.sigma <= TIGHT_SIGMA


def choose_unwindowed(
    cands: list[Candidate], shape: tuple[int, int], ring: Level
) -> tuple[Candidate | None, float]:
    """:func:`_choose`, but a found centre (not a beamstop circle) at the middle of a
    bright flat top bounded by a step (:func:`plateau`: a window, an aperture) is no beam
    centre: the candidates within max(2 px, 0.5 % of the diagonal) of it (they read the
    same edge) are dropped and the rest chosen among, until the choice is no such centre.
    A choice that is not found (a guess of the position) on the frame is no window's middle
    either: the same, its confidence kept, while another candidate is left to guess."""
    best, conf = _choose(cands, shape, ring)
    tol = max(2.0, 0.005 * math.hypot(*shape))
    while (
        best is not None
        and (conf >= CONFIDENCE_THRESHOLD or on_frame(best.x, best.y, shape))
        and best.method != "beamstop"
        and plateau(ring, best.x, best.y) > 0
    ):
        near = best
        cands = [c for c in cands if math.hypot(c.x - near.x, c.y - near.y) > tol]
        guess = conf < CONFIDENCE_THRESHOLD
        nxt, after = _choose(cands, shape, ring)
        if guess and nxt is None:
            break  # nothing else to guess
        best, conf = nxt, conf if guess else after  # a guess stays not found, as it was
    return best, conf


def polished_confidence(
    best: Candidate, conf: float, cands: list[Candidate], ring: Level, shape: tuple[int, int]
) -> float:
    """The confidence ``conf`` of the polished choice ``best`` on a frame of ``shape``,
    lowered where what was polished does not pin it.

    A found ring fit that no other estimator among ``cands`` backs (:func:`_backers`) and
    none of whose arcs on the ``ring`` level is a circle about it (:func:`round_arc`) is
    one estimator alone (LONE): the common centre of arcs about other points (a window's
    edge, straight streaks, rings pulled by those) is the centre of none of them. An
    isotropy-search centre that no polish refined is known to the search's last step only
    (its sigma, a quarter of a fine block: 4 px on a 2000 px frame): its confidence is
    multiplied by the chance that an error of that size stays within the goal
    (:func:`scattertag.beam.pose.within`); a polished one carries the polish's own standard
    error (P about 1). Off the frame the goal is 2 % of the diagonal, and the step does not
    matter. A found centre that the image pins only weakly (:func:`_weak`: a pattern centre
    about which the frame is under half isotropic with at most one backer, one arc about
    which no rings show) keeps at most WEAK: found, not confident."""
    if (
        conf >= CONFIDENCE_THRESHOLD
        and best.method == "rings"
        and _backers(best, [c for c in cands if not c.extra], math.hypot(*shape)) == 0
        and not round_arc(ring, best.x, best.y)
    ):
        return min(conf, LONE)
    if best.method == "isotropy":
        conf *= within(best.x, best.y, best.sigma, shape)
    if conf >= CONFIDENCE_THRESHOLD and _weak(best, cands, ring, shape):
        return min(conf, WEAK)
    return conf


def _weak(best: Candidate, cands: list[Candidate], ring: Level, shape: tuple[int, int]) -> bool:
    """True for a centre on a frame of ``shape`` that the image pins weakly: a pattern
    centre (PATTERN) or a compact feature (``compact``) that at most one other independent
    estimator among ``cands`` backs (:func:`_backers`) and about which the radial profile
    explains under half of the fine level's variance (fine isotropy under WEAK_ISOTROPY:
    one local feature, a spot or a stop's box, pins it more than the pattern does; point
    symmetry and the gradient lines read it alike), or a ring fit through one arc about
    which no rings show (:func:`crest` under CREST_Z on the ``ring`` level: the rules never
    trust one arc on the frame, the ranker that chose it never asks). Centres off the frame
    are not asked (nothing local there to read)."""
    if not on_frame(best.x, best.y, shape):
        return False
    if best.method in PATTERN + ("compact",):
        plain = [c for c in cands if not c.extra]
        lone = _backers(best, plain, math.hypot(*shape)) <= 1
        return lone and best.fine_isotropy < WEAK_ISOTROPY
    return best.method == "rings" and best.arcs < 2 and crest(ring, best.x, best.y) < CREST_Z


def unshaded_confidence(
    best: Candidate, conf: float, cands: list[Candidate], counts: np.ndarray, ok: np.ndarray
) -> float:
    """The confidence ``conf`` of the choice ``best`` on the frame ``counts`` (valid pixels
    ``ok``), at most WEAK for a beamstop circle that no other estimator among ``cands``
    backs (:func:`_backers`) and whose inside is no shadow: darker than the light about it
    by under SHADOW_T standard errors (:func:`shadow_contrast`). A strict circle stands
    alone because a stop's shadow is at the dark level; a circle traced on a falloff's dark
    corner, a pattern's dark middle or between a frame's module gaps is not."""
    if (
        conf < WEAK
        or best.method != "beamstop"
        or best.radius <= 0.0
        or _backers(best, [c for c in cands if not c.extra], math.hypot(*counts.shape)) > 0
    ):
        return conf
    if shadow_contrast(counts, ok, best.x, best.y, best.radius) < SHADOW_T:
        return WEAK
    return conf
