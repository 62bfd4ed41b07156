"""The estimators' centres on a frame's pyramid, each a :class:`Candidate` with its evidence.

:func:`candidates` runs the ring fit and the gradient lines, then (unless a tight ring fit
settles the frame) the stops' round edges, circles and bar ends, then (unless one of them
settles it) the arc consensus, point symmetry and the shadow axes (:func:`before_search`), then
(unless point symmetry and the gradient lines agree) the isotropy search (:func:`isotropy_search`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from scattertag.beam import bars, disks, edges
from scattertag.beam.bars import bar_tips
from scattertag.beam.disks import shadow_circles
from scattertag.beam.gradient import coherence, gradient_field, lines_meet, meeting_point
from scattertag.beam.grid import on_frame
from scattertag.beam.pose import DetectorPose
from scattertag.beam.pyramid import Level, pixels, pyramid
from scattertag.beam.radial import climb, isotropy
from scattertag.beam.rings import Ridges, arc_consensus, fit_arcs, level_ridges
from scattertag.beam.shadow import Shadows, shadow_tips
from scattertag.beam.symmetry import axis_start, refine_symmetry, symmetry_map, symmetry_peaks

#: Centres farther than this many frame diagonals from the frame's middle are rejected.
FAR_DIAGONALS = 4.0
#: Beamstop circles kept as candidates: edge cover and standard error (px) of the loose ones.
LOOSE_SPAN, LOOSE_SIGMA = 0.2, 3.0


@dataclass(frozen=True)
class Candidate:
    """One estimator's centre (frame px), its standard error (frame px) and its evidence."""

    method: str
    x: float
    y: float
    sigma: float
    coherence: float
    isotropy: float  # adjusted R^2 of a radial profile about the centre (coarse level)
    fine_isotropy: float  # the same on the fine level
    rho: float = 0.0  # point-symmetry correlation (symmetry)
    arcs: int = 0  # arcs used (rings)
    seed: str = ""  # the candidate the isotropy search started from (isotropy)
    extra: bool = False  # seen by the ranker only (:func:`_choose`)
    span: float = 0.0  # fraction of the circle its edge points cover (beamstop)
    radius: float = 0.0  # the shadow circle's radius, frame px (beamstop circles; 0 else)
    pose: DetectorPose | None = None  # the detector's pose (cone)


@dataclass
class _Found:
    """The candidates of one frame, each scored as it is added (:meth:`add`): gradient
    coherence on the fine level's field, isotropy R^2 on the coarse and fine levels."""

    shape: tuple[int, int]  # the frame's (rows, cols)
    coarse: Level
    fine: Level
    out: list[Candidate] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.field = gradient_field(self.fine)
        self.coarse_px, self.fine_px = pixels(self.coarse), pixels(self.fine)

    def add(
        self, method: str, x: float, y: float, sigma: float, isof: float | None = None, **kw
    ) -> None:
        """A centre at fine-level (x, y), standard error ``sigma`` (fine level px), kept if
        finite and within FAR_DIAGONALS of the frame's middle; ``isof`` its fine-level
        isotropy when known (a climb's score)."""
        rows, cols = self.shape
        fx, fy = self.fine.to_frame(x, y)
        far = FAR_DIAGONALS * math.hypot(rows, cols)
        near = math.hypot(fx - (cols - 1) / 2, fy - (rows - 1) / 2) <= far
        if math.isfinite(x) and math.isfinite(y) and not math.isnan(sigma) and near:
            coh = coherence(self.field, x, y)
            iso = isotropy(self.coarse_px, *self.coarse.from_frame(fx, fy))
            isof = isotropy(self.fine_px, x, y) if isof is None else isof
            self.out.append(Candidate(method, fx, fy, sigma * self.fine.b, coh, iso, isof, **kw))

    def add_frame(self, method: str, x: float, y: float, sigma: float, **kw) -> None:
        """:meth:`add` of a centre at frame (x, y) with a standard error in frame px."""
        self.add(method, *self.fine.from_frame(x, y), sigma / self.fine.b, **kw)


def candidates(
    counts: np.ndarray,
    ok: np.ndarray,
    hint: tuple[float, float] | None = None,
    levels: tuple[Level, Level, Level] | None = None,
) -> list[Candidate]:
    """Centres from the estimators on the frame's pyramid (``levels``, :func:`pyramid`,
    built here when None), those that converge, in the order that stops once the frame is
    settled: concentric arcs fixed to a fraction of a pixel, a stop's round edge (whatever
    the sample shows), point symmetry that the gradient lines confirm; else the isotropy
    search."""
    found, settled = before_search(counts, ok, pyramid(counts, ok) if levels is None else levels)
    if not settled:
        isotropy_search(found, hint)
    return found.out


def before_search(
    counts: np.ndarray, ok: np.ndarray, levels: tuple[Level, Level, Level]
) -> tuple[_Found, bool]:
    """The candidates of every stage of :func:`candidates` before the isotropy search, and
    True if one of them settled the frame (the search is then not needed)."""
    coarse, fine, ring = levels
    found = _Found(counts.shape, coarse, fine)
    rd = _ring_fit(found, ring)
    _gradient_lines(found, coarse)
    if _tight_ring_fit(found.out):
        return found, True  # the other estimators cannot do better
    shadows = ring.shadows(max(counts.shape))
    if _round_edge(found, counts, ok, shadows):
        return found, True  # the stop's round edge is the choice (see _choose)
    _arc_consensus(found, rd, ring)
    rho = _point_symmetry(found)
    _shadow_axes(found, rho, shadows)
    return found, _symmetry_confirmed(found)  # two independent estimators agree


def _ring_fit(found: _Found, ring: Level) -> Ridges:
    """The ring level's ridges and their circles' common centre (``rings``)."""
    rd = level_ridges(ring)
    x, y, _, n = fit_arcs(rd, tie=False)  # a start for the fit below
    if math.isfinite(x):
        x, y, s, n = fit_arcs(rd, (x, y))
        found.add_frame("rings", *ring.to_frame(x, y), s * ring.b, arcs=n)
    return rd


def _gradient_lines(found: _Found, coarse: Level) -> None:
    """The meeting point of the gradient lines (``gradient``): coarse, then on the fine field."""
    x, y = lines_meet(gradient_field(coarse))
    if math.isfinite(x):
        x, y, s = meeting_point(found.field, found.fine.from_frame(*coarse.to_frame(x, y)))
        found.add("gradient", x, y, s)


def _tight_ring_fit(out: list[Candidate]) -> bool:
    """True if the ring fit (the first candidate) has at least 3 arcs and a standard error of
    at most 0.5 px."""
    return bool(out) and out[0].method == "rings" and out[0].arcs >= 3 and out[0].sigma <= 0.5


def _round_edge(found: _Found, counts: np.ndarray, ok: np.ndarray, shadows: Shadows) -> bool:
    """The round edges of the stops' ``shadows`` (``beamstop``): circles (:func:`_circles`)
    and bar ends (:func:`_bar_ends`); True if a strict circle or a bar end was kept. Both
    are fitted: where both fit one stop the choice is the more precise (a disk's circle or
    a bar's half disk), and neither model's standard error is known before its fit."""
    strict = _circles(found, counts, ok, shadows)
    return _bar_ends(found, counts, ok, shadows) or strict


def _bar_ends(found: _Found, counts: np.ndarray, ok: np.ndarray, shadows: Shadows) -> bool:
    """The two best bar ends fitted as half disks (``beamstop``); True if any."""
    ends = bar_tips(counts, ok, shadows)
    for end in ends[:2]:
        found.add_frame("beamstop", end.x, end.y, end.sigma, span=bars.tip_cover(end))
    return bool(ends)


def _circles(found: _Found, counts: np.ndarray, ok: np.ndarray, shadows: Shadows) -> bool:
    """The two best strict circles (``beamstop``) and two loose ones (``extra``, LOOSE_SPAN
    and LOOSE_SIGMA); True if a strict one was kept."""
    circles = shadow_circles(counts, ok, shadows, LOOSE_SPAN, LOOSE_SIGMA)
    strict = [c for c in circles if c.span >= disks.MIN_SPAN and c.sigma <= edges.MAX_SIGMA]
    loose = [c for c in circles if c not in strict]
    for c in strict[:2] + loose[:2]:
        found.add_frame(
            "beamstop", c.x, c.y, c.sigma, span=c.span, radius=c.radius, extra=c in loose
        )
    return bool(strict)


def _arc_consensus(found: _Found, rd: Ridges, ring: Level) -> None:
    """The centres that 3 or more arcs share (RANSAC, :func:`arc_consensus`) over 2 px from
    the common ring fit (``rings``, ``extra``)."""
    fits = [(c.x, c.y) for c in found.out if c.method == "rings"]
    for x, y, s, n in arc_consensus(rd, 2.0 * math.hypot(*ring.g.shape)):
        fx, fy = ring.to_frame(x, y)
        if n >= 3 and all(math.hypot(fx - a, fy - b) > 2.0 for a, b in fits):
            found.add_frame("rings", fx, fy, s * ring.b, arcs=n, extra=True)


def _point_symmetry(found: _Found) -> np.ndarray:
    """The refined peaks of the coarse symmetry map on the frame (``symmetry``); the map."""
    coarse, fine = found.coarse, found.fine
    rho, overlap = symmetry_map(coarse)
    for px, py, _ in symmetry_peaks(rho, overlap):
        x, y, s, r = refine_symmetry(fine, fine.from_frame(*coarse.to_frame(px, py)))
        if on_frame(*fine.to_frame(x, y), found.shape):
            found.add("symmetry", x, y, s, rho=r)
    return rho


def _shadow_axes(found: _Found, rho: np.ndarray, shadows: Shadows) -> None:
    """The most point-symmetric centre on the axis of each long shadow from its tip
    (``axis``, ``extra``), refined as point symmetry."""
    fine = found.fine
    for tip in shadow_tips(shadows):
        start = axis_start(rho, found.coarse, tip, max(found.shape))
        if start is not None:
            x, y, s, r = refine_symmetry(fine, fine.from_frame(*start))
            if on_frame(*fine.to_frame(x, y), found.shape):
                found.add("axis", x, y, s, rho=r, extra=True)


def _symmetry_confirmed(found: _Found) -> bool:
    """True if point symmetry and the gradient lines (the most isotropic of each) lie within
    max(2 px, 0.5 % of the diagonal) of each other."""
    by = by_method([c for c in found.out if not c.extra])
    sym, grad = by.get("symmetry"), by.get("gradient")
    if sym is None or grad is None:
        return False
    return math.hypot(sym.x - grad.x, sym.y - grad.y) <= max(2.0, 0.005 * math.hypot(*found.shape))


def isotropy_search(found: _Found, hint: tuple[float, float] | None) -> None:
    """The frame's middle and the ``hint`` as candidates, then the pattern search for the
    most isotropic centre (``isotropy``) from the most isotropic candidate, coarse then
    fine."""
    rows, cols = found.shape
    found.add_frame("centre", (cols - 1) / 2, (rows - 1) / 2, math.inf)
    if hint is not None:
        found.add_frame("hint", float(hint[0]), float(hint[1]), math.inf)
    plain = [c for c in found.out if not c.extra]
    if plain:
        coarse = found.coarse
        top = max(plain, key=lambda c: c.isotropy)
        x, y, _ = climb(found.coarse_px, coarse.from_frame(top.x, top.y), 4.0, 0.5)
        x, y, score = climb(found.fine_px, found.fine.from_frame(*coarse.to_frame(x, y)), 1.0, 0.25)
        found.add("isotropy", x, y, 0.5, isof=score, seed=top.method)


def by_method(cands: list[Candidate]) -> dict[str, Candidate]:
    """Each method's candidate; of several (point-symmetry peaks), the most isotropic."""
    by: dict[str, Candidate] = {}
    for c in cands:
        if c.method not in by or c.fine_isotropy > by[c.method].fine_isotropy:
            by[c.method] = c
    return by
