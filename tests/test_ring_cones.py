"""Tilted-detector rings: cones about the beam fitted to arcs (scattertag.beam.cones) and
their use in the beam-centre estimate."""

import math

import numpy as np
import pytest

from scattertag.beam import center as bc
from scattertag.beam.candidates import Candidate
from scattertag.beam.cones import (
    _prepare,
    _rotation,
    cone_angles,
    cone_fits,
    fit_cones,
    searched_cones,
)
from scattertag.beam.polish import _tilted
from scattertag.beam.pyramid import pyramid
from scattertag.beam.rings import Ridges, fit_arcs, ridges
from scattertag.geometry import Geometry
from scattertag.simulate.tilt import Tilt, detector_xy, frame_maps

BEAM = (250.0, 320.0)
TILT = Tilt(math.radians(25.0), math.radians(30.0))
GEOMETRY = Geometry((600, 600), BEAM, pixel_size=1e-4, distance=0.05)  # d = 500 px


def ring_points(radii, chi, noise=0.05, seed=0):
    """Points on the conics of equivalent radii ``radii`` (px) at azimuths ``chi``, with
    Gaussian noise (px), and their arc labels."""
    rng = np.random.default_rng(seed)
    xs, ys, labels = [], [], []
    for j, r in enumerate(radii):
        x, y = detector_xy(GEOMETRY, TILT, np.full(chi.size, float(r)), chi)
        xs.append(x + rng.normal(0, noise, x.size))
        ys.append(y + rng.normal(0, noise, x.size))
        labels.append(np.full(x.size, j))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(labels)


def test_cone_angles_match_the_simulator_and_finite_differences():
    """2 theta agrees with the simulator's geometry (pyFAI's Fit2D one, checked in
    test_simulate_tilt), its gradient with finite differences."""
    tt, _, _ = frame_maps(GEOMETRY, TILT)
    ys, xs = np.mgrid[0:600:37, 0:600:41]
    x, y = xs.ravel().astype(float), ys.ravel().astype(float)
    d = GEOMETRY.distance / GEOMETRY.pixel_size
    tx, ty = TILT.angle * math.cos(TILT.axis), TILT.angle * math.sin(TILT.axis)
    params = np.array([*BEAM, math.log(d), tx, ty])
    ours, grad = cone_angles(params, x, y)
    np.testing.assert_allclose(ours, tt[ys.ravel(), xs.ravel()], atol=1e-9)
    h = 1e-4
    dx = (cone_angles(params, x + h, y)[0] - cone_angles(params, x - h, y)[0]) / (2 * h)
    dy = (cone_angles(params, x, y + h)[0] - cone_angles(params, x, y - h)[0]) / (2 * h)
    np.testing.assert_allclose(grad, np.hypot(dx, dy), rtol=1e-5)


def test_cones_find_the_beam_where_circles_miss():
    """Four tilted rings seen all round: the cone fit lands within 0.2 px of the direct
    beam and finds the tilt; the common centre of circles through the same points is
    several pixels off."""
    x, y, label = ring_points((60, 110, 160, 210), np.linspace(-math.pi, math.pi, 90))
    w = np.ones(x.size)
    rd = Ridges(x, y, w, label, 4)
    cx, cy, _, _ = fit_arcs(rd)
    cx, cy, _, _ = fit_arcs(rd, (cx, cy))
    assert math.hypot(cx - BEAM[0], cy - BEAM[1]) > 3.0
    fit = fit_cones(x, y, w, label, (cx, cy))
    assert fit is not None and fit.arcs == 4
    assert math.hypot(fit.x - BEAM[0], fit.y - BEAM[1]) < 0.2
    assert abs(math.degrees(fit.tilt) - 25.0) < 1.0
    assert fit.rms < 0.1 < fit.circle_rms
    assert fit.sigma < 0.2


def test_a_tilted_ring_frame_gets_the_direct_beam():
    """A simulated frame of five rings on a detector tilted 25 degrees: the estimate is the
    cone fit's, within 1 px of the direct beam, while circles through its arcs miss by
    more than 5 px."""
    tt, _, _ = frame_maps(GEOMETRY, TILT)
    img = 20.0 + 5.0 * np.exp(-tt / 0.3)
    for c in (0.12, 0.2, 0.28, 0.36, 0.44):
        img += 200.0 * np.exp(-0.5 * ((tt - c) / 0.004) ** 2)
    counts = np.random.default_rng(0).poisson(img).astype(float)
    est = bc.estimate_beam_center(counts)
    assert est.method == "cone" and est.found
    assert math.hypot(est.x - BEAM[0], est.y - BEAM[1]) < 1.0
    ring = pyramid(counts, bc.valid_pixels(counts))[2]
    rd = ridges(ring)
    x, y, _, _ = fit_arcs(rd)
    x, y, _, _ = fit_arcs(rd, (x, y))
    fx, fy = ring.to_frame(x, y)
    assert math.hypot(fx - BEAM[0], fy - BEAM[1]) > 5.0


def test_untilted_rings_keep_their_circle_centre():
    """Concentric circles: no tilt is found, and the estimate stays the ring fit."""
    yy, xx = np.mgrid[0:400, 0:400]
    r = np.hypot(xx - 190.3, yy - 207.6)
    img = 10.0 + sum(300.0 * np.exp(-0.5 * ((r - rr) / 1.5) ** 2) for rr in (50, 90, 130, 170))
    counts = np.random.default_rng(2).poisson(img).astype(float)
    est = bc.estimate_beam_center(counts)
    assert est.method == "rings"
    assert math.hypot(est.x - 190.3, est.y - 207.6) < 0.5


@pytest.mark.parametrize(
    "case",
    ["one arc", "too few points", "lengths differ", "start not finite", "negative label"],
)
def test_degenerate_input_gives_no_fit(case):
    """Input that cannot fix a cone gives None, not an exception or a made-up centre."""
    x, y, label = ring_points((60, 110), np.linspace(0, 2, 40))
    w = np.ones(x.size)
    start = (250.0, 320.0)
    if case == "one arc":
        label = np.zeros_like(label)
    elif case == "too few points":
        x, y, w, label = x[:10], y[:10], w[:10], label[:10]
    elif case == "lengths differ":
        w = w[:-1]
    elif case == "start not finite":
        start = (math.nan, 320.0)
    else:
        label = label - 1
    assert fit_cones(x, y, w, label, start) is None


def test_bad_points_are_ignored():
    """Non-finite points and points of zero weight are left out; the fit is unchanged."""
    x, y, label = ring_points((60, 110, 160), np.linspace(-math.pi, math.pi, 60))
    w = np.ones(x.size)
    clean = fit_cones(x, y, w, label, BEAM)
    x2, y2, w2 = x.copy(), y.copy(), w.copy()
    x2[::7] = np.nan
    w2[3::7] = 0.0
    y2[5::7] = 1e9  # a wild point of weight 0
    w2[5::7] = 0.0
    dirty = fit_cones(x2, y2, w2, label, BEAM)
    assert clean is not None and dirty is not None
    assert math.hypot(dirty.x - BEAM[0], dirty.y - BEAM[1]) < 0.3


def pieces_and_streaks():
    """Three tilted rings each cut into four short arcs (+-7 degrees at 0, 90, 180 and 270
    degrees of azimuth), and three radial streaks (points along a ray, 120-150 px): points,
    weights and arc labels, and the common centre of circles through them (5.5 px off)."""
    rng = np.random.default_rng(1)
    xs, ys = [], []
    for r in (60, 110, 160):
        for c0 in (0.0, 0.5 * math.pi, math.pi, 1.5 * math.pi):
            chi = c0 + np.linspace(-0.12, 0.12, 25)
            x, y = detector_xy(GEOMETRY, TILT, np.full(chi.size, float(r)), chi)
            xs.append(x + rng.normal(0, 0.05, x.size))
            ys.append(y + rng.normal(0, 0.05, x.size))
    for c0 in (0.7, 2.3, 4.0):
        x, y = detector_xy(GEOMETRY, TILT, np.linspace(120, 150, 25), np.full(25, c0))
        xs.append(x)
        ys.append(y)
    label = np.repeat(np.arange(len(xs)), 25)
    x, y, w = np.concatenate(xs), np.concatenate(ys), np.ones(label.size)
    rd = Ridges(x, y, w, label, len(xs))
    cx, cy, _, _ = fit_arcs(rd)
    cx, cy, _, _ = fit_arcs(rd, (cx, cy))
    return rd, (cx, cy)


def test_pieces_of_one_ring_tied_fix_the_beam():
    """Short arcs of three tilted rings and three radial streaks: with a 2 theta an arc the
    cones do not fix the beam (standard error over 1 px, off by over 1 px); with the pieces
    of each ring tied and the streaks left out they land within 0.05 px, at the tilt, the
    pose fixed to a fraction of a degree and a per cent of the distance."""
    rd, start = pieces_and_streaks()
    assert math.hypot(start[0] - BEAM[0], start[1] - BEAM[1]) > 3.0
    free = fit_cones(rd.x, rd.y, rd.w, rd.label, start)
    assert free is not None and free.sigma > 1.0
    assert math.hypot(free.x - BEAM[0], free.y - BEAM[1]) > 1.0
    tied = fit_cones(rd.x, rd.y, rd.w, rd.label, start, tie=True)
    assert tied is not None and tied.rings == 3
    assert math.hypot(tied.x - BEAM[0], tied.y - BEAM[1]) < 0.05
    assert abs(math.degrees(tied.tilt) - 25.0) < 0.5
    assert math.degrees(tied.tilt_sigma) < 0.5 and tied.log_d_sigma < 0.01


def test_both_fits_from_shared_starts_are_the_separate_fits():
    """:func:`cone_fits` in two modes gives what :func:`fit_cones` gives in each."""
    rd, start = pieces_and_streaks()
    both = cone_fits(rd.x, rd.y, rd.w, rd.label, start, ((False, math.inf), (True, 0.85)))
    for fit, tie, worth in zip(both, (False, True), (math.inf, 0.85), strict=True):
        alone = fit_cones(rd.x, rd.y, rd.w, rd.label, start, worth=worth, tie=tie)
        assert fit is not None and alone is not None
        assert (fit.x, fit.y, fit.sigma, fit.rings) == (alone.x, alone.y, alone.sigma, alone.rings)


class _Level:
    """A level of single-pixel blocks (its pixels are the frame's)."""

    b = 1

    def to_frame(self, x, y):
        return x, y

    def from_frame(self, x, y):
        return x, y


def test_a_ring_fit_through_pieces_of_tilted_rings_moves_to_the_beam():
    """The chosen ring fit of those arcs (5.5 px off) is replaced by the tied cones (the
    untied ones are not kept), found as before."""
    rd, (cx, cy) = pieces_and_streaks()
    best = Candidate("rings", cx, cy, 0.1, 0.5, 0.5, 0.5, arcs=15)
    cone, conf = _tilted(best, 0.7, _Level(), rd, (600, 600))
    assert cone.method == "cone" and conf >= 0.6
    assert math.hypot(cone.x - BEAM[0], cone.y - BEAM[1]) < 0.05
    assert cone.pose is not None and abs(math.degrees(cone.pose.tilt) - 25.0) < 0.5


def test_untilted_pieces_tied_fix_no_tilt():
    """Pieces of untilted rings tied: the tilt found is no pose (:func:`_tilted` keeps the
    circles)."""
    rng = np.random.default_rng(3)
    chi = np.concatenate([c0 + np.linspace(-0.12, 0.12, 25) for c0 in (0.0, 1.6, 3.1, 4.7)])
    xs, ys = [], []
    for r in (60, 110, 160):
        xs.append(BEAM[0] + r * np.cos(chi) + rng.normal(0, 0.05, chi.size))
        ys.append(BEAM[1] + r * np.sin(chi) + rng.normal(0, 0.05, chi.size))
    label = np.repeat(np.arange(12), 25)
    x, y, w = np.concatenate(xs), np.concatenate(ys), np.ones(label.size)
    rd = Ridges(x, y, w, label, 12)
    best = Candidate("rings", BEAM[0] + 0.02, BEAM[1] - 0.01, 0.02, 0.5, 0.5, 0.5, arcs=12)
    out, conf = _tilted(best, 0.7, _Level(), rd, (600, 600))
    assert out.method == "rings" and (out.x, out.y) == (best.x, best.y) and conf == 0.7


def steep_far_arcs():
    """Small rings of a steep tilt far away (seed 1's 106 of the benchmark): 26.6 degrees
    about -113, d = 2400 px, one whole ring of 60 px and two arcs of one of 185 px (-5 to 80
    and 105 to 125 degrees of azimuth): ridge points and the common centre of circles
    through them (about 30 px off)."""
    geometry = Geometry((600, 600), BEAM, pixel_size=1e-4, distance=0.24)
    tilt = Tilt(math.radians(26.6), math.radians(-113.0))
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for r, (c0, c1) in ((60, (-180, 180)), (185, (-5, 80)), (182, (105, 125))):
        chi = np.radians(np.linspace(c0, c1, max(12, int(abs(c1 - c0) * r / 60))))
        x, y = detector_xy(geometry, tilt, np.full(chi.size, float(r)), chi)
        xs.append(x + rng.normal(0, 0.05, x.size))
        ys.append(y + rng.normal(0, 0.05, x.size))
    label = np.concatenate([np.full(a.size, j) for j, a in enumerate(xs)])
    x, y = np.concatenate(xs), np.concatenate(ys)
    rd = Ridges(x, y, np.ones(x.size), label, len(xs))
    cx, cy, _, _ = fit_arcs(rd)
    cx, cy, _, _ = fit_arcs(rd, (cx, cy))
    return rd, (cx, cy)


def test_tilted_starts_find_a_steep_tilt_far_away():
    """From the untilted starts the tied cones through those arcs tie nothing, the untied
    ones land 3 px off; from the tilted starts, with d up to 30 radii, the tied cones land
    within 0.05 px, beyond 10 radii, and fix the pose."""
    rd, start = steep_far_arcs()
    assert math.hypot(start[0] - BEAM[0], start[1] - BEAM[1]) > 20.0
    tied = fit_cones(rd.x, rd.y, rd.w, rd.label, start, tie=True)
    untied = fit_cones(rd.x, rd.y, rd.w, rd.label, start)
    assert tied is None and untied is not None
    assert math.hypot(untied.x - BEAM[0], untied.y - BEAM[1]) > 2.0
    found = searched_cones(rd.x, rd.y, rd.w, rd.label, start)
    assert found is not None and found.distance > 10.0 * found.radius
    assert math.hypot(found.x - BEAM[0], found.y - BEAM[1]) < 0.05
    assert abs(math.degrees(found.tilt) - 26.6) < 0.5


def test_a_loose_ring_fit_of_a_steep_tilt_moves_to_the_beam():
    """A loose ring fit (standard error 1.1 px) through those arcs becomes the searched
    cones' direct beam; a tight one (0.3 px) is not searched and keeps its place."""
    rd, (cx, cy) = steep_far_arcs()
    loose = Candidate("rings", cx, cy, 1.1, 0.5, 0.5, 0.5, arcs=3)
    cone, conf = _tilted(loose, 0.7, _Level(), rd, (600, 600))
    assert cone.method == "cone" and conf >= 0.6
    assert math.hypot(cone.x - BEAM[0], cone.y - BEAM[1]) < 0.05
    tight = Candidate("rings", cx, cy, 0.3, 0.5, 0.5, 0.5, arcs=3)
    out, conf = _tilted(tight, 0.7, _Level(), rd, (600, 600))
    assert out.method == "rings" and (out.x, out.y) == (cx, cy) and conf == 0.7


STRIP_BEAM = (668.0, 105.0)  # off a 195 x 487 strip, as on b_tassone's Pilatus strip


THREE, FOUR = (0.45, 0.55, 0.65), (0.3, 0.35, 0.4, 0.45)  # rings' 2 theta (radians)


def strip_counts(
    tilt_deg: float, axis_deg: float, distance_px: float, rings: tuple[float, ...] = THREE
) -> np.ndarray:
    """A 195 x 487 strip whose direct beam lies 181 px beyond its right edge: rings at 2
    theta ``rings`` over a falloff, Poisson counts; the detector tilted ``tilt_deg`` about
    an axis at ``axis_deg``, ``distance_px`` from the sample."""
    geometry = Geometry((195, 487), STRIP_BEAM, pixel_size=1e-4, distance=distance_px * 1e-4)
    tt, _, _ = frame_maps(geometry, Tilt(math.radians(tilt_deg), math.radians(axis_deg)))
    img = 20.0 + 30.0 * np.exp(-tt / 0.3)
    for c in rings:
        img += 200.0 * np.exp(-0.5 * ((tt - c) / 0.003) ** 2)
    return np.random.default_rng(0).poisson(img).astype(float)


@pytest.mark.parametrize(
    "axis_deg, distance_px, rings",
    [(0.0, 400.0, THREE), (180.0, 800.0, THREE), (90.0, 500.0, FOUR), (135.0, 300.0, THREE)],
)
def test_short_arcs_of_a_tilted_strip_are_not_found(axis_deg, distance_px, rings):
    """Tilted 32.5 degrees, the strip's arcs fit circles about a point 10-240 tolerances
    (2 % of the diagonal) from the beam, which were found at 0.7: the circles' own
    standard error exceeds the tolerance (the first two), or tilted cones explain the arcs
    as well with the beam over a tolerance away (the last two, whose circles' standard
    errors are 1.0 and 8.2 px, the tolerance 10.5 px): not found."""
    counts = strip_counts(32.5, axis_deg, distance_px, rings)
    est = bc.estimate_beam_center(counts)
    tol = 0.02 * math.hypot(*counts.shape)
    assert math.hypot(est.x - STRIP_BEAM[0], est.y - STRIP_BEAM[1]) > tol
    assert not est.found


@pytest.mark.parametrize("distance_px", [400.0, 800.0])
def test_short_arcs_of_an_untilted_strip_are_found(distance_px):
    """The same strip untilted: the circles' centre is the beam (within 0.1 of the
    tolerance) and found; cones do not rival it."""
    counts = strip_counts(0.0, 0.0, distance_px)
    est = bc.estimate_beam_center(counts)
    tol = 0.02 * math.hypot(*counts.shape)
    assert est.found and est.method == "rings" and not est.on_frame
    assert math.hypot(est.x - STRIP_BEAM[0], est.y - STRIP_BEAM[1]) < 0.1 * tol


def test_cones_of_many_geometries_are_each_geometrys_own():
    """cone_angles and the arcs' residuals of k geometries at once (the forward-difference
    Jacobian's) give each geometry's floats bit for bit, as the rotation's entries are
    the simulator's (Tilt.rotation) bit for bit."""
    rng = np.random.default_rng(5)
    x, y = rng.uniform(0, 600, 400), rng.uniform(0, 600, 400)
    label = rng.integers(0, 5, 400)
    arcs = _prepare(x, y, rng.uniform(0.5, 2.0, 400), label)
    assert arcs is not None
    rows = np.array([[*BEAM, math.log(900.0), 0.1, -0.2], [*BEAM, math.log(400.0), 0.0, 0.0]])
    rows = np.concatenate([rows, rows[:1] + rng.normal(0, 1e-3, (4, 5))])
    tt, grad = cone_angles(rows, x, y)
    res, two_theta = arcs.solve(rows)
    for k, p in enumerate(rows):
        assert tt[k].tobytes() == cone_angles(p, x, y)[0].tobytes()
        assert grad[k].tobytes() == cone_angles(p, x, y)[1].tobytes()
        assert res[k].tobytes() == arcs.residuals(p).tobytes()
        assert two_theta[k].tobytes() == arcs.solve(p)[1].tobytes()
    for tx, ty in [(0.0, 0.0), (0.3, 0.0), (0.0, -0.2), *rng.normal(0, 0.3, (50, 2))]:
        r = Tilt(math.hypot(tx, ty), math.atan2(ty, tx)).rotation()
        read = (r[0, 0], r[0, 1], r[1, 0], r[1, 1], r[2, 0], r[2, 1])
        assert _rotation.__wrapped__(float(tx), float(ty)) == read
