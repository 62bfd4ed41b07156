"""Beam centre from the direct beam's glow beside a rod beamstop that crosses it."""

import math

import numpy as np
import pytest

from scattertag.beam import center as bc
from scattertag.beam import glow as beam_glow
from scattertag.beam.fallbacks import glow_candidate
from scattertag.beam.grazing import grazing_candidate
from scattertag.beam.pyramid import pyramid
from scattertag.beam.shadow import find_shadows
from scattertag.geometry import Geometry
from scattertag.simulate import beamstops, gisaxs

BEAM = (203.3, 262.6)


def rod_shadow(shape: tuple[int, int], angle_deg: float, beyond: float) -> np.ndarray:
    """(rows, cols) transmission of the simulator's rod stop (half-width 8 px, blur 1 px,
    leak 1e-4) running from ``beyond`` px past the beam, over it, to the frame's edge at
    ``angle_deg`` (0: to the right, -90: up)."""
    a = math.radians(angle_deg)
    tip = (BEAM[0] - beyond * math.cos(a), BEAM[1] - beyond * math.sin(a))
    p = {"kind": "rod", "angle": a, "blur": 1.0, "leak": 1e-4, "half_width": 8.0}
    return beamstops._shade(Geometry(shape, tip), "rod", p, 1.0).transmission_map(shape)


def glow(shape: tuple[int, int]) -> np.ndarray:
    """(rows, cols) the direct beam's halo about BEAM: 1e6 / (1 + (r / 3 px)^2)^1.5."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    r = np.hypot(cols - BEAM[0], rows - BEAM[1])
    return 1e6 / (1.0 + (r / 3.0) ** 2) ** 1.5


def grazing_rod_frame(with_glow: bool, seed: int = 0) -> np.ndarray:
    """A 400 x 400 GISAXS frame (the simulator's film shadow, Yoneda band, specular rod
    and spot, a diffuse term above the horizon, a flat background of 50 counts) whose
    specular column is behind a rod stop from the top edge to 60 px below the beam at
    BEAM, whose round end lies in a module gap (17 rows of zeros, as on a Pilatus): the
    spot and the horizon on that column are hidden; with or without the beam's glow;
    Poisson."""
    shape = (400, 400)
    g = Geometry(shape=shape, beam_center=BEAM)
    inc = {"alpha_i_deg": 0.3, "alpha_c_deg": 0.15}
    rows, cols = np.mgrid[0:400, 0:400]
    r = np.hypot(cols - BEAM[0], rows - BEAM[1])
    shadow, band = gisaxs.vertical_factor(g, inc, 2.0)
    lam = 2e3 / (1.0 + (r / 30.0) ** 2) * (shadow * (1.0 + band))[:, None]
    index, values = gisaxs.rod(g, BEAM[0], 1.0, inc, 0.3)
    lam.ravel()[index] += 300.0 * values
    spot = gisaxs.row_at_exit_angle(g, inc, inc["alpha_i_deg"])
    lam += 3e3 * np.exp(-0.5 * ((cols - BEAM[0]) ** 2 + (rows - spot) ** 2) / 1.5**2)
    if with_glow:
        lam += glow(shape)
    lam = (lam + 50.0) * rod_shadow(shape, -90.0, 60.0)
    counts = np.random.default_rng(seed).poisson(lam)
    counts[313:330] = 0
    return counts


def test_grazing_frame_behind_a_rod_found_from_the_glow():
    counts = grazing_rod_frame(with_glow=True)
    ok = bc.valid_pixels(counts)
    ring = pyramid(counts, ok)[2]
    graze = grazing_candidate(counts, ok, ring)
    assert graze is None or graze[1] < bc.CONFIDENCE_THRESHOLD  # y hidden from the column
    est = bc.estimate_beam_center(counts)
    assert est.method == "glow" and est.found
    assert math.hypot(est.x - BEAM[0], est.y - BEAM[1]) <= 2.0


def test_rod_without_glow_stays_not_found():
    counts = grazing_rod_frame(with_glow=False)
    ok = bc.valid_pixels(counts)
    ok &= ~beam_glow.gap_lines(counts, ok)
    ring = pyramid(counts, ok)[2]
    (rod,) = beam_glow.rods(find_shadows(ring.g, ring.ok, ring.b, max(counts.shape)))[:1]
    assert abs(rod.x + rod.ux * (BEAM[1] - rod.y) / rod.uy - BEAM[0]) < 2.0  # the rod is seen
    assert beam_glow.glow_of(counts, ok, rod) is None
    assert not bc.estimate_beam_center(counts).found


@pytest.mark.parametrize("angle", [0.0, 180.0, 90.0, -35.0])
def test_glow_beside_rods_from_any_side(angle):
    """A rod from either side or the bottom, or tilted, over a flat background."""
    shape = (300, 400)
    lam = (glow(shape) + 5.0) * rod_shadow(shape, angle, 40.0)
    counts = np.random.default_rng(1).poisson(lam)
    ok = bc.valid_pixels(counts)
    found = glow_candidate(counts, ok, pyramid(counts, ok)[2])
    assert found is not None
    cand, conf = found
    assert math.hypot(cand.x - BEAM[0], cand.y - BEAM[1]) <= 2.0
    assert conf >= bc.CONFIDENCE_THRESHOLD


def test_band_across_the_rod_is_no_glow():
    """A horizontal band as bright far from the rod as beside it (a Yoneda band, a streak)."""
    shape = (300, 400)
    rows = np.arange(shape[0])[:, None]
    band = 2e3 * np.exp(-0.5 * ((rows - BEAM[1]) / 4.0) ** 2) * np.ones(shape)
    counts = np.random.default_rng(2).poisson((band + 5.0) * rod_shadow(shape, -90.0, 40.0))
    ok = bc.valid_pixels(counts)
    assert glow_candidate(counts, ok, pyramid(counts, ok)[2]) is None


@pytest.mark.parametrize("radius", [30.0, 60.0, 120.0])
def test_rings_crossing_the_rod_are_no_glow(radius):
    """Rings about the beam (over 200 counts) cross the edges at two places each and fade
    away from the rod too; where they cross moves along the rod with the offset (without
    that test the 120 px ring was taken, 240 px off; without it and the fade, the 60 px
    rings, 120 px off)."""
    shape = (300, 400)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    r = np.hypot(cols - BEAM[0], rows - BEAM[1])
    rings = sum(2e3 * np.exp(-0.5 * ((r - k * radius) / 2.0) ** 2) for k in (1, 2))
    counts = np.random.default_rng(3).poisson((rings + 200.0) * rod_shadow(shape, -90.0, 40.0))
    ok = bc.valid_pixels(counts)
    found = glow_candidate(counts, ok, pyramid(counts, ok)[2])
    assert found is None or math.hypot(found[0].x - BEAM[0], found[0].y - BEAM[1]) <= 2.0


def test_module_gaps_of_zeros_are_found():
    counts = np.ones((60, 80), dtype=np.int32)
    counts[20:23, :] = 0
    counts[:, 40] = 0
    counts[5, :30] = 0  # a short run of zeros is no gap
    gaps = beam_glow.gap_lines(counts, counts >= 0)
    assert gaps[20:23].all() and gaps[:, 40].all()
    assert not gaps[5, 41:].any() and gaps.sum() == 3 * 80 + 60 - 3
