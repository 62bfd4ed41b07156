"""The estimators' centres on a frame's pyramid, each a :class:`Candidate` with its evidence.

:func:`candidates` runs the ring fit, the gradient lines, the arc consensus, the beamstop
circles and bar ends, point symmetry, the shadow axes and the isotropy search, stopping
early where a tight ring fit or a stop's round edge leaves nothing to gain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scattertag.beam import bars, disks, edges
from scattertag.beam.bars import bar_tips
from scattertag.beam.disks import shadow_circles
from scattertag.beam.gradient import coherence, gradient_field, lines_meet, meeting_point
from scattertag.beam.grid import on_frame
from scattertag.beam.pose import DetectorPose
from scattertag.beam.pyramid import Level, pixels, pyramid
from scattertag.beam.radial import climb, isotropy
from scattertag.beam.rings import arc_consensus, fit_arcs, level_ridges
from scattertag.beam.shadow import shadow_tips
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
    pose: DetectorPose | None = None  # the detector's pose (cone)


def candidates(
    counts: np.ndarray,
    ok: np.ndarray,
    hint: tuple[float, float] | None = None,
    levels: tuple[Level, Level, Level] | None = None,
) -> list[Candidate]:
    """Centres from the estimators on the frame's pyramid (``levels``, :func:`pyramid`,
    built here when None), those that converge."""
    coarse, fine, ring = pyramid(counts, ok) if levels is None else levels
    ff = gradient_field(fine)
    pc, pf = pixels(coarse), pixels(fine)
    out: list[Candidate] = []

    rows, cols = counts.shape
    far = FAR_DIAGONALS * math.hypot(rows, cols)

    def add(method: str, x: float, y: float, sigma: float, isof: float | None = None, **kw) -> None:
        fx, fy = fine.to_frame(x, y)
        near = math.hypot(fx - (cols - 1) / 2, fy - (rows - 1) / 2) <= far
        if math.isfinite(x) and math.isfinite(y) and not math.isnan(sigma) and near:
            coh = coherence(ff, x, y)
            iso = isotropy(pc, *coarse.from_frame(fx, fy))
            isof = isotropy(pf, x, y) if isof is None else isof  # a climb's score is this
            out.append(Candidate(method, fx, fy, sigma * fine.b, coh, iso, isof, **kw))

    rd = level_ridges(ring)
    x, y, _, n = fit_arcs(rd, tie=False)  # a start for the fit below
    if math.isfinite(x):
        x, y, s, n = fit_arcs(rd, (x, y))
        add("rings", *fine.from_frame(*ring.to_frame(x, y)), s * ring.b / fine.b, arcs=n)
    fc = gradient_field(coarse)
    x, y = lines_meet(fc)
    if math.isfinite(x):
        x, y, s = meeting_point(ff, fine.from_frame(*coarse.to_frame(x, y)))
        add("gradient", x, y, s)
    if out and out[0].method == "rings" and out[0].arcs >= 3 and out[0].sigma <= 0.5:
        return out  # a tight ring fit: the other estimators cannot do better
    fits = [(c.x, c.y) for c in out if c.method == "rings"]
    for x, y, s, n in arc_consensus(rd, 2.0 * math.hypot(*ring.g.shape)):
        fx, fy = ring.to_frame(x, y)
        if n >= 3 and all(math.hypot(fx - a, fy - b) > 2.0 for a, b in fits):
            add("rings", *fine.from_frame(fx, fy), s * ring.b / fine.b, arcs=n, extra=True)
    shadows = ring.shadows(max(counts.shape))
    circles = shadow_circles(counts, ok, shadows, LOOSE_SPAN, LOOSE_SIGMA)
    strict = [c for c in circles if c.span >= disks.MIN_SPAN and c.sigma <= edges.MAX_SIGMA]
    loose = [c for c in circles if c not in strict]
    for circle in strict[:2] + loose[:2]:
        x, y = fine.from_frame(circle.x, circle.y)
        add("beamstop", x, y, circle.sigma / fine.b, span=circle.span, extra=circle in loose)
    ends = bar_tips(counts, ok, shadows)
    for end in ends[:2]:
        x, y = fine.from_frame(end.x, end.y)
        add("beamstop", x, y, end.sigma / fine.b, span=bars.tip_cover(end))
    if strict or ends:
        return out  # the stop's round edge is the choice (see _choose): no search needed
    rho, overlap = symmetry_map(coarse)
    for px, py, _ in symmetry_peaks(rho, overlap):
        x, y, s, r = refine_symmetry(fine, fine.from_frame(*coarse.to_frame(px, py)))
        if on_frame(*fine.to_frame(x, y), counts.shape):
            add("symmetry", x, y, s, rho=r)
    for tip in shadow_tips(shadows):
        start = axis_start(rho, coarse, tip, max(counts.shape))
        if start is not None:
            x, y, s, r = refine_symmetry(fine, fine.from_frame(*start))
            if on_frame(*fine.to_frame(x, y), counts.shape):
                add("axis", x, y, s, rho=r, extra=True)
    by = by_method([c for c in out if not c.extra])
    tol = max(2.0, 0.005 * math.hypot(*counts.shape))
    if (
        "symmetry" in by
        and "gradient" in by
        and (
            math.hypot(by["symmetry"].x - by["gradient"].x, by["symmetry"].y - by["gradient"].y)
            <= tol
        )
    ):
        return out  # two independent estimators agree: no search needed
    add("centre", *fine.from_frame((cols - 1) / 2, (rows - 1) / 2), math.inf)
    if hint is not None:
        add("hint", *fine.from_frame(float(hint[0]), float(hint[1])), math.inf)
    plain = [c for c in out if not c.extra]
    if plain:
        top = max(plain, key=lambda c: c.isotropy)
        x, y, _ = climb(pc, coarse.from_frame(top.x, top.y), 4.0, 0.5)
        x, y, score = climb(pf, fine.from_frame(*coarse.to_frame(x, y)), 1.0, 0.25)
        add("isotropy", x, y, 0.5, isof=score, seed=top.method)
    return out


def by_method(cands: list[Candidate]) -> dict[str, Candidate]:
    """Each method's candidate; of several (point-symmetry peaks), the most isotropic."""
    by: dict[str, Candidate] = {}
    for c in cands:
        if c.method not in by or c.fine_isotropy > by[c.method].fine_isotropy:
            by[c.method] = c
    return by
