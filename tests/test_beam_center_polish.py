"""Polishing a chosen isotropy-search centre by the point symmetry of the pattern near it."""

import math

import numpy as np
import pytest

from scattertag.beam import center as bc
from scattertag.beam.candidates import Candidate
from scattertag.beam.polish import (
    FINE_SIGMA,
    FINE_WINDOW,
    _fine_level,
    _polish_symmetry,
    _ramp_bias,
    _unshadowed,
    polish,
)
from scattertag.beam.pyramid import Level, pyramid

CX, CY = 512.3, 487.6


def diffuse_frame(cx: float, cy: float, size: int = 1000, seed: int = 0) -> np.ndarray:
    """Poisson counts of an elliptical diffuse pattern about (cx, cy), I(q) = I(-q), with a
    flat-field ramp of 10 % across the frame and a ring far out whose centre is shifted by
    6 px (a tilted detector's rings move with R^2)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = xx - cx, yy - cy
    r = np.sqrt((dx / 1.3) ** 2 + dy**2)
    ring = 300 * np.exp(-0.5 * ((np.hypot(dx - 6.0, dy) - 0.35 * size) / 3.0) ** 2)
    mean = (2e4 / (1 + (r / 40.0) ** 2) + 20 + ring) * (1 + 0.1 * xx / size)
    return np.random.default_rng(seed).poisson(mean).astype(np.float64)


def isotropy_candidate(x: float, y: float) -> Candidate:
    """An isotropy-search centre at (x, y) (its evidence does not matter here)."""
    return Candidate("isotropy", x, y, 2.0, 0.5, 0.5, 0.5)


def ring_level(counts: np.ndarray) -> Level:
    """The ring level of the frame's pyramid (the polish's resolution)."""
    return pyramid(counts, bc.valid_pixels(counts))[2]


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """The diffuse frame about (CX, CY), made once for the module."""
    return diffuse_frame(CX, CY)


def test_isotropy_centre_polished_to_the_centre_of_symmetry(frame):
    ring = ring_level(frame)
    start = isotropy_candidate(CX + 2.6, CY - 1.7)  # a quarter of a fine block is 1 px here
    got = _polish_symmetry(ring, start)
    assert math.hypot(got.x - CX, got.y - CY) < 0.5
    assert got.method == "isotropy"
    assert got.sigma < 0.5


def test_polish_does_not_jump(frame):
    ring = ring_level(frame)
    far = isotropy_candidate(CX + 3 * ring.b, CY)  # farther than one ring-level block
    assert _polish_symmetry(ring, far) == far


def test_noise_is_not_polished():
    counts = np.random.default_rng(1).poisson(50.0, (1000, 1000)).astype(np.float64)
    start = isotropy_candidate(500.0, 500.0)
    assert _polish_symmetry(ring_level(counts), start) == start


def test_a_ramped_choice_is_polished_with_its_ramp_where_a_ramp_could_move_it(frame):
    ok = bc.valid_pixels(frame)
    ring = pyramid(frame, ok)[2]
    # over this pattern's broad top a flat field's ramp (10 % here) could move a ramp-free
    # polish by more than FINE_SIGMA: point-symmetry and shadow-axis choices, fitted with
    # the ramp free, are polished with it free in the window too; a beamstop circle stays
    level = _fine_level(ring, CX, CY)
    radius = FINE_WINDOW * max(level.g.shape)
    assert _ramp_bias(level, *level.from_frame(CX, CY), radius) * level.b > FINE_SIGMA
    for method in ("symmetry", "axis"):
        cand = Candidate(method, CX + 1.5, CY + 1.5, 0.3, 0.5, 0.5, 0.5)
        moved, conf = polish(frame, ok, cand, ring, 0.7)
        assert conf == 0.7 and moved.method == method
        assert math.hypot(moved.x - CX, moved.y - CY) < 0.5
    cand = Candidate("beamstop", CX + 1.5, CY + 1.5, 0.3, 0.5, 0.5, 0.5)
    assert polish(frame, ok, cand, ring, 0.7) == (cand, 0.7)
    # gradient lines: refined at the finest level (_fine_symmetry), sharp here
    cand = Candidate("gradient", CX + 1.5, CY + 1.5, 0.3, 0.5, 0.5, 0.5)
    moved, conf = polish(frame, ok, cand, ring, 0.7)
    assert conf == 0.7 and moved.method == "gradient"
    assert math.hypot(moved.x - CX, moved.y - CY) < 0.5
    moved, conf = polish(frame, ok, isotropy_candidate(CX + 1.5, CY + 1.5), ring, 0.7)
    assert conf == 0.7
    assert math.hypot(moved.x - CX, moved.y - CY) < 0.5


def paddle_frame(
    cx: float, cy: float, size: int = 1000, seed: int = 0, leak: float = 1e-4
) -> np.ndarray:
    """Poisson counts of a steep elliptical diffuse pattern about (cx, cy) (a power law with
    a 6 px core), a flat-field ramp of 10 % across the frame, and a paddle's shadow (letting
    through ``leak``): a box over the beam, off centre along its arm, which runs to the
    frame's right border."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = xx - cx, yy - cy
    r = np.sqrt((dx / 1.3) ** 2 + dy**2)
    mean = (20 + 5e4 / (1 + (r / 6.0) ** 2) ** 1.5) * (1 + 0.1 * xx / size)
    box = (np.abs(dx - 6.0) <= 22) & (np.abs(dy) <= 12)
    arm = (dx >= 0) & (np.abs(dy) <= 3)
    return np.random.default_rng(seed).poisson(np.where(box | arm, mean * leak, mean))


def test_a_symmetry_choice_is_polished_where_the_pattern_falls_steeply():
    # near a steep pattern's centre a ramp cannot move the point-symmetry centre: the
    # ramp-free polish at blocks of 2 px brings a choice 3.6 px off to within 0.5 px,
    # though the paddle's box hides the beam and the pairs on its arm's side
    cx, cy = 503.3, 488.7
    counts = paddle_frame(cx, cy)
    ok = bc.valid_pixels(counts)
    ring = pyramid(counts, ok)[2]
    start = Candidate("symmetry", cx + 3.0, cy - 2.0, 0.3, 0.5, 0.5, 0.5)
    moved, conf = polish(counts, ok, start, ring, 0.7)
    assert conf == 0.7 and moved.method == "symmetry"
    assert math.hypot(moved.x - cx, moved.y - cy) < 0.5
    level = _fine_level(ring, moved.x, moved.y)
    radius = FINE_WINDOW * max(level.g.shape)
    assert _ramp_bias(level, *level.from_frame(moved.x, moved.y), radius) * level.b < 0.5


def test_ramp_bias_is_large_over_a_flat_top_and_small_on_a_steep_falloff():
    # the bound grows as r / |dg/dr| over the window: a flat top lets a ramp move the centre
    y, x = np.mgrid[0:400, 0:400].astype(np.float64)
    r = np.hypot(x - 200.3, y - 199.6)
    rng = np.random.default_rng(5)
    steep = rng.poisson(20 + 5e4 / (1 + (r / 5.0) ** 2) ** 1.5).astype(np.float64)
    flat = rng.poisson(2000 * np.exp(-((r / 300.0) ** 2)) + 20).astype(np.float64)
    bias = []
    for counts in (steep, flat):
        ring = pyramid(counts, bc.valid_pixels(counts))[2]
        bias.append(_ramp_bias(ring, *ring.from_frame(200.3, 199.6), 30.0) * ring.b)
    assert bias[0] < 0.5 < 2.0 < bias[1]


def test_a_stop_that_lets_light_through_is_left_out_of_the_polish():
    # a paddle letting through 3 % stays above the frame-wide dark floor near the beam, so
    # its box counts as lit there; the shadow found by local contrast is left out of the
    # polish's pairs (a box's blurred outline is point-symmetric about its own middle), and
    # the polish still ends at the beam
    cx, cy = 503.3, 488.7
    counts = paddle_frame(cx, cy, leak=0.03)
    ok = bc.valid_pixels(counts)
    ring = pyramid(counts, ok)[2]
    level = _fine_level(ring, cx, cy)
    x, y = (round(v) for v in level.from_frame(cx, cy))
    near = (slice(y - 10, y + 11), slice(x - 10, x + 11))
    assert not level.dark[near].any()
    box = (slice(y - 6, y + 7), slice(x - 8, x + 15))  # the box's blocks (22 x 12 px)
    assert _unshadowed(level, ring, 1000).lit[box].sum() < level.lit[box].sum()
    start = Candidate("symmetry", cx + 5.0, cy + 1.0, 0.3, 0.5, 0.5, 0.5)
    moved, _ = polish(counts, ok, start, ring, 0.7)
    assert math.hypot(moved.x - cx, moved.y - cy) < 0.5


def test_a_pattern_centre_gives_way_to_tight_concentric_arcs_at_the_polish_level():
    """Sharp rings about (CX, CY) over a halo whose centre is 4 px off (an anisotropic
    pattern moves point symmetry and the gradient lines by pixels): a gradient-lines choice
    at the halo's centre is polished onto the rings' common centre, not the halo's."""
    size = 1000
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    r = np.hypot(xx - CX, yy - CY)
    halo = 3e3 / (1 + (np.hypot(xx - CX - 4.0, yy - CY) / 150.0) ** 2)
    rings = sum(400 * np.exp(-0.5 * ((r - q) / 2.0) ** 2) for q in (150.0, 230.0, 310.0))
    counts = np.random.default_rng(3).poisson(halo + rings + 20).astype(np.float64)
    ok = bc.valid_pixels(counts)
    ring = pyramid(counts, ok)[2]
    start = Candidate("gradient", CX + 4.0, CY, 0.1, 0.5, 0.5, 0.5)
    got, _ = polish(counts, ok, start, ring, 0.7)
    assert math.hypot(got.x - CX, got.y - CY) < 0.5
    assert got.method == "gradient"
