"""A spotty ring beside the frame: one circle through its spots places the beam."""

import math

import numpy as np
import pytest

from scattertag.beam import center as bc
from scattertag.beam.candidates import Candidate
from scattertag.beam.evidence import CREST_Z, crest, round_arc
from scattertag.beam.fallbacks import SPOT_BRIGHT, arc_guess, spot_guess
from scattertag.beam.pyramid import Level, pyramid
from scattertag.beam.spots import spot_circle

BEAM = (-60.0, 140.0)  # off the frame's left edge
#: six grains of a ring of radius 150 px about BEAM, at azimuths (degrees) on the frame
GRAINS = np.radians([-50.0, -30.0, -12.0, 5.0, 22.0, 41.0])
STRAY = ((200.0, 40.0), (120.0, 220.0), (230.0, 200.0))  # spots on no circle about BEAM


def _frame(spots: list[tuple[float, float]], seed: int = 1, n: int = 256) -> np.ndarray:
    """(n, n) Poisson counts: a flat 50-count background and Gaussian spots (sigma 1.5 px,
    400 counts high) at ``spots`` (x, y)."""
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    lam = np.full((n, n), 50.0)
    for sx, sy in spots:
        lam += 400.0 * np.exp(-0.5 * ((xx - sx) ** 2 + (yy - sy) ** 2) / 1.5**2)
    return np.random.default_rng(seed).poisson(lam).astype(np.float64)


def _grains(angles: np.ndarray, cx: float = BEAM[0], cy: float = BEAM[1]) -> list:
    """Spot positions at ``angles`` on a ring of radius 150 px about (cx, cy)."""
    return [(cx + 150.0 * math.cos(a), cy + 150.0 * math.sin(a)) for a in angles]


def _band(n: int = 256) -> np.ndarray:
    """(n, n) Poisson counts over 50: a continuous ring of radius 150 px about BEAM whose
    height varies 52-208 counts along the azimuth (40 periods): cut into pieces by the
    spots' threshold, bright all along between them."""
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    r, phi = np.hypot(xx - BEAM[0], yy - BEAM[1]), np.arctan2(yy - BEAM[1], xx - BEAM[0])
    lam = 50.0 + 130.0 * (1.0 + 0.6 * np.sin(40.0 * phi)) * np.exp(-0.5 * ((r - 150.0) / 1.5) ** 2)
    return np.random.default_rng(1).poisson(lam).astype(np.float64)


def _ring(counts: np.ndarray) -> Level:
    return pyramid(counts, bc.valid_pixels(counts))[2]


def test_the_circle_through_a_spotty_ring_s_grains_finds_the_off_frame_beam():
    """Six grains at one radius and three stray spots: the circle through the grains, its
    centre within 0.5 % of the diagonal of the beam, with a standard error to match."""
    counts = _frame(_grains(GRAINS) + list(STRAY))
    level = _ring(counts)
    c = spot_circle(level)
    assert c is not None and c.count == 6 and c.spots == 9
    x, y = level.to_frame(c.x, c.y)
    assert math.hypot(x - BEAM[0], y - BEAM[1]) <= 0.005 * math.hypot(*counts.shape)
    assert c.sigma * level.b <= 2.0 and c.bright < SPOT_BRIGHT


def test_a_not_found_guess_moves_to_the_spots_circle_and_stays_not_found():
    """A frame showing only a spotty ring beside it: the estimate is the spots' circle
    (within the goal, 2 % of the diagonal), still not found (a guess)."""
    counts = _frame(_grains(GRAINS) + list(STRAY))
    est = bc.estimate_beam_center(counts)
    assert est.method == "spots" and not est.on_frame
    assert math.hypot(est.x - BEAM[0], est.y - BEAM[1]) <= 0.02 * math.hypot(*counts.shape)
    assert est.confidence < bc.CONFIDENCE_THRESHOLD


@pytest.mark.parametrize(
    ("spots", "why"),
    [
        (_grains(GRAINS[:4]), "four spots: fewer than SPOT_RING"),
        (_grains(GRAINS, 120.0, 140.0), "a circle about a point on the frame"),
        (list(STRAY) + [(40.0, 60.0), (90.0, 30.0)], "spots on no circle"),
    ],
)
def test_spots_that_fix_no_off_frame_circle_leave_the_guess(spots: list, why: str) -> None:
    level = _ring(_frame(spots))
    guess = Candidate("isotropy", 30.0, 140.0, 1.0, 0.5, 0.5, 0.5)
    assert spot_guess(guess, level, (256, 256)) is guess, why


def test_a_continuous_ridge_cut_into_pieces_is_no_spotty_ring():
    """A ring whose height varies along it is cut by the threshold into many pieces on one
    circle, but it is bright between them: no spots' guess (the arcs place it)."""
    level = _ring(_band())
    c = spot_circle(level)
    assert c is not None and c.count >= 10 and c.bright > SPOT_BRIGHT
    guess = Candidate("isotropy", 30.0, 140.0, 1.0, 0.5, 0.5, 0.5)
    assert spot_guess(guess, level, (256, 256)) is guess


def test_arc_guess_takes_spots_for_pattern_choices_and_asks_more_where_rings_show():
    """A not-found isotropy centre gives way to six spots' circle; a choice of another
    estimator (a stop's circle) is left alone; where a weak ring choice's rings show
    (``least`` = SPOT_MANY: an anisotropic ring's lobes are 10 or more) six do not move it,
    thirteen do."""
    level = _ring(_frame(_grains(GRAINS) + list(STRAY)))
    shape = (256, 256)
    iso = Candidate("isotropy", 30.0, 140.0, 1.0, 0.5, 0.5, 0.5)
    assert arc_guess(iso, [iso], level, shape).method == "spots"
    stop = Candidate("beamstop", 30.0, 140.0, 0.2, 0.5, 0.5, 0.5)
    assert arc_guess(stop, [stop], level, shape) is stop
    many = _ring(_frame(_grains(np.radians(np.arange(-54.0, 50.0, 8.0)))))
    assert spot_guess(iso, many, shape, 10).method == "spots"
    assert spot_guess(iso, level, shape, 10) is iso


def _halo_frame(spots: list[tuple[float, float]], beam: tuple[float, float]) -> np.ndarray:
    """(256, 256) Poisson counts: a halo falling from ``beam`` (x, y) over a 50-count
    background, and Gaussian spots (sigma 1.5 px, 400 counts high) at ``spots``."""
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float64)
    lam = 50.0 + 400.0 * np.exp(-np.hypot(xx - beam[0], yy - beam[1]) / 12.0)
    for sx, sy in spots:
        lam += 400.0 * np.exp(-0.5 * ((xx - sx) ** 2 + (yy - sy) ** 2) / 1.5**2)
    return np.random.default_rng(2).poisson(lam).astype(np.float64)


def test_a_spotty_ring_about_a_beam_on_the_frame_moves_a_guess_far_from_it():
    """Eight grains of a ring of radius 24 px about a beam on the frame, over a halo about
    it: a guess 30 px away moves to their circle (within the goal, 2 px); a guess within
    2 px of it stays (the circle confirms it), and five grains (fewer than SPOT_ON) move
    nothing."""
    beam = (120.0, 130.0)
    grains = [
        (beam[0] + 24.0 * math.cos(a), beam[1] + 24.0 * math.sin(a))
        for a in np.radians(np.arange(8) * 45.0 + 10.0)
    ]
    shape = (256, 256)
    far = Candidate("isotropy", 150.0, 130.0, 1.0, 0.5, 0.5, 0.5)
    moved = spot_guess(far, _ring(_halo_frame(grains, beam)), shape)
    assert moved is not None and moved.method == "spots"
    assert math.hypot(moved.x - beam[0], moved.y - beam[1]) <= 2.0
    near = Candidate("isotropy", moved.x + 1.5, moved.y, 1.0, 0.5, 0.5, 0.5)
    assert spot_guess(near, _ring(_halo_frame(grains, beam)), shape) is near
    assert spot_guess(far, _ring(_halo_frame(grains[:5], beam)), shape) is far


def _ringed(
    grains: list[tuple[float, float]], beam: tuple[float, float], high: float = 40.0
) -> Level:
    """The ring level of a frame with a halo and a faint continuous ring (radius 60 px,
    ``high`` counts high) about ``beam`` and Gaussian grains at ``grains`` (over a 50-count
    floor)."""
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float64)
    r = np.hypot(xx - beam[0], yy - beam[1])
    lam = 50.0 + 400.0 * np.exp(-r / 12.0) + high * np.exp(-0.5 * ((r - 60.0) / 2.0) ** 2)
    for sx, sy in grains:
        lam += 400.0 * np.exp(-0.5 * ((xx - sx) ** 2 + (yy - sy) ** 2) / 1.5**2)
    return _ring(np.random.default_rng(2).poisson(lam).astype(np.float64))


def test_a_weak_choice_whose_rings_show_moves_only_where_they_show_more_about_the_spots():
    """A not-found ring fit 4 px from a beam whose ring and grains show about it (crest over
    CREST_Z about the fit, higher about the grains' circle) moves to their circle; a ring
    fit at the ring's centre stays when the grains' circle lies 4 px off it (the rings show
    less there)."""
    beam, shape = (120.0, 130.0), (256, 256)
    angles = np.radians(np.arange(8) * 45.0 + 10.0)
    around = [(beam[0] + 24.0 * math.cos(a), beam[1] + 24.0 * math.sin(a)) for a in angles]
    level = _ringed(around, beam)
    fit = Candidate("rings", beam[0] + 4.0, beam[1], 1.0, 0.5, 0.5, 0.5, arcs=2)
    assert crest(level, fit.x, fit.y) >= CREST_Z
    moved = arc_guess(fit, [fit], level, shape)
    assert moved is not None and moved.method == "spots"
    assert math.hypot(moved.x - beam[0], moved.y - beam[1]) <= 2.0
    aside = [(x + 4.0, y) for x, y in around]
    at = Candidate("rings", beam[0], beam[1], 1.0, 0.5, 0.5, 0.5, arcs=2)
    assert arc_guess(at, [at], _ringed(aside, beam), shape) is at


def test_a_ring_fit_with_an_arc_round_about_it_keeps_its_place_on_the_frame():
    """A ring fit at the centre of a traced ring (an arc that is a circle about it) stays
    where a circle through grains lies 4 px off it; an isotropy centre there moves."""
    beam, shape = (120.0, 130.0), (256, 256)
    angles = np.radians(np.arange(8) * 45.0 + 10.0)
    aside = [(beam[0] + 4.0 + 24.0 * math.cos(a), beam[1] + 24.0 * math.sin(a)) for a in angles]
    level = _ringed(aside, beam, 12.0)
    assert round_arc(level, *beam)
    fit = Candidate("rings", beam[0], beam[1], 1.0, 0.5, 0.5, 0.5, arcs=2)
    assert spot_guess(fit, level, shape) is fit
    iso = Candidate("isotropy", beam[0], beam[1], 1.0, 0.5, 0.5, 0.5)
    assert spot_guess(iso, level, shape).method == "spots"
