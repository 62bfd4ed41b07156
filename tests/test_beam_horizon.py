"""Grazing incidence: the film's horizon and the half pattern above it (beam.horizon)."""

import math

import numpy as np
import pytest
from scipy import ndimage

from scattertag.beam import center as bc
from scattertag.beam import horizon
from scattertag.beam.candidates import Candidate
from scattertag.beam.grazing import _chord, _chord_circles, _cuts, _half, below_horizon
from scattertag.beam.pyramid import pyramid
from scattertag.beam.radial import climb, pixels
from scattertag.geometry import Geometry
from scattertag.simulate import gisaxs
from test_beam_center import calibrant_frame


def half_frame(
    below: float, reach: float, halo: bool = False, offset: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, Geometry, float]:
    """A 500 x 500 grazing-incidence frame drawn with the simulator's film shadow and
    Yoneda band (alpha_c = 0.15 deg, strength 1): a diffuse blob about the beam (width
    12 px) and, with ``halo``, a ring of radius 60 px, both cut at the film's horizon
    ``below`` px above the beam, at a distance of ``reach`` pixels (the simulator's WAXS
    frames: a few hundred, the horizon under a pixel above the beam); no specular rod or
    spot; a flat background of 3 counts plus ``offset`` (an integrating detector's dark
    level), which the film does not cut; Poisson counts. Returns the counts, the geometry
    (beam at (247.3, 401.6)) and the horizon's row."""
    g = Geometry(
        shape=(500, 500), beam_center=(247.3, 401.6), pixel_size=172e-6, distance=reach * 172e-6
    )
    inc = {"alpha_i_deg": math.degrees(math.atan(below / reach)), "alpha_c_deg": 0.15}
    rows, cols = np.mgrid[0:500, 0:500].astype(np.float64)
    r = np.hypot(cols - g.beam_center[0], rows - g.beam_center[1])
    shadow, band = gisaxs.vertical_factor(g, inc, 1.0)
    sample = 5e3 / (1.0 + (r / 12.0) ** 2)
    if halo:
        sample += 400.0 * np.exp(-0.5 * ((r - 60.0) / 4.0) ** 2)
    lam = sample * (shadow * (1.0 + band))[:, None] + 3.0 + offset
    counts = np.random.default_rng(seed).poisson(lam)
    return counts, g, float(gisaxs.row_at_exit_angle(g, inc, 0.0))


def _error(est, g: Geometry) -> float:
    return math.hypot(est.x - g.beam_center[0], est.y - g.beam_center[1])


@pytest.mark.parametrize(
    ("below", "reach", "halo", "offset"),
    [(0.7, 300.0, False, 0.0), (0.7, 300.0, False, 500.0), (12.0, 3000.0, True, 0.0)],
)
def test_half_pattern_gives_the_beam_below_the_horizon(below, reach, halo, offset):
    """The blob's centroid lies above the horizon, where no grazing beam can be: the
    estimate is the half pattern's beam, within 2 px, found."""
    counts, g, _ = half_frame(below, reach, halo, offset)
    est = bc.estimate_beam_center(counts)
    assert est.method == "grazing"
    assert _error(est, g) <= 2.0
    assert est.confidence >= bc.CONFIDENCE_THRESHOLD


def test_horizon_cut_where_the_counts_cross_half_the_step():
    """The bands about the beam's column find the film's horizon within a pixel, also over
    an integrating detector's offset (a drop under 1 in log(1 + counts) without the floor)."""
    counts, g, row = half_frame(0.7, 300.0, offset=500.0)
    ok = bc.valid_pixels(counts)
    ring = pyramid(counts, ok)[2]
    found = horizon.cuts(counts, ok, (ring.lit, ring.b), g.beam_center[0], 500.0)
    assert found and abs(found[0].y - row) <= 1.0


def test_a_whole_pattern_has_no_half_below_it():
    """Without a film the blob is whole: the drop below it is its own flank, the pattern
    above that drop is isotropic about the blob, above it: no half pattern, and a found
    centre stays."""
    g = Geometry(shape=(500, 500), beam_center=(247.3, 301.6))
    rows, cols = np.mgrid[0:500, 0:500].astype(np.float64)
    r = np.hypot(cols - g.beam_center[0], rows - g.beam_center[1])
    counts = np.random.default_rng(1).poisson(5e3 / (1.0 + (r / 12.0) ** 2) + 3.0)
    ok = bc.valid_pixels(counts)
    ring = pyramid(counts, ok)[2]
    x = g.beam_center[0]
    assert (
        _half(counts, ok, ring, x, _cuts(counts, ok, ring, x, g.beam_center), g.beam_center) is None
    )
    est = bc.estimate_beam_center(counts)
    assert est.method != "grazing" and _error(est, g) <= 2.0


def test_transmission_rings_show_no_horizon_to_replace_their_centre():
    s = calibrant_frame("center", 3)
    ok = bc.valid_pixels(s.counts, s.mask)
    ring = pyramid(s.counts, ok)[2]
    cx, cy = s.geometry.beam_center
    best = Candidate("rings", cx, cy, 0.1, 0.9, 0.9, 0.9, arcs=5)
    assert below_horizon(s.counts, ok, ring, best) is None


def test_bounded_climb_stays_on_or_below_its_row():
    """The pattern search kept on or below row y_min ends on it when the best centre lies
    above, and finds a centre below it as the free search does."""
    yy, xx = np.mgrid[0:60, 0:60].astype(np.float64)
    g = np.exp(-np.hypot(xx - 30.0, yy - 20.0) / 6.0).ravel()
    px = pixels(xx.ravel(), yy.ravel(), g)
    x, y, _ = climb(px, (31.0, 30.0), 4.0, 0.25, y_min=25.0)
    assert y >= 25.0 and abs(y - 25.0) <= 0.5 and abs(x - 30.0) <= 0.5
    x, y, _ = climb(px, (31.0, 24.0), 4.0, 0.25, y_min=10.0)
    assert abs(x - 30.0) <= 0.5 and abs(y - 20.0) <= 0.5


def bar_over_beam_frame(light: float, seed: int) -> tuple[np.ndarray, Geometry]:
    """A 500 x 500 grazing-incidence frame (beam 0.7 px below the horizon at 300 px, as
    :func:`half_frame`) of an integrating detector (offset 1000 counts): a broad blob about
    the beam (width 40 px, 5000 counts) cut at the horizon, a background of ``light``
    counts that the film does not cut, and a bar stop from the top edge (half-width 20 px,
    transmission 1e-4, edge blurred by 2 px) whose round end is centred on the beam, so
    only its two sides border the blob and its round end the dim background below the
    horizon; Poisson counts. Returns the counts and the geometry."""
    below, reach = 0.7, 300.0
    g = Geometry(
        shape=(500, 500), beam_center=(247.3, 401.6), pixel_size=172e-6, distance=reach * 172e-6
    )
    inc = {"alpha_i_deg": math.degrees(math.atan(below / reach)), "alpha_c_deg": 0.15}
    rows, cols = np.mgrid[0:500, 0:500].astype(np.float64)
    bx, by = g.beam_center
    r = np.hypot(cols - bx, rows - by)
    shadow, band = gisaxs.vertical_factor(g, inc, 1.0)
    lam = 5e3 / (1.0 + (r / 40.0) ** 2) * (shadow * (1.0 + band))[:, None] + light
    stop = ((np.abs(cols - bx) <= 20.0) & (rows <= by)) | (r <= 20.0)
    lam *= 1.0 - (1.0 - 1e-4) * ndimage.gaussian_filter(stop.astype(np.float64), 2.0)
    return np.random.default_rng(seed).poisson(lam + 1000.0), g


@pytest.mark.parametrize(("light", "seed"), [(100.0, 0), (300.0, 1)])
def test_a_stop_over_the_grazing_beam_is_traced_on_either_side_of_the_horizon(light, seed):
    """Read on one scale, the bar's round end against the background below the horizon
    (20-60 times dimmer than the blob above it) falls under the crest threshold its sides
    set, and only the sides, which do not fix the centre along the bar, are traced (before:
    a ring fit through the blob's cut 86-101 px off, not found); traced on either side of
    the horizon on its own scale, the round end gives the beam (``grazing``), found."""
    counts, g = bar_over_beam_frame(light, seed)
    est = bc.estimate_beam_center(counts)
    assert est.method == "grazing"
    assert _error(est, g) <= 1.0
    assert est.confidence >= bc.CONFIDENCE_THRESHOLD


def test_a_disks_chord_at_the_horizon_starts_its_circle():
    """A disk stop (radius 15 px, on a thin arm) centred 3 px below the film's horizon: its
    chord on the rows just above the horizon is sqrt(R^2 - delta^2) long each way about the
    beam's column, and the circle started there (delta 0, then half the chord) and traced on
    either side of the horizon gives the beam (5's 51: the shadow's own start lay 7 px off
    with a radius of 8 px, and its fit's window missed the edge)."""
    g = Geometry(shape=(256, 256), beam_center=(165.6, 227.8), pixel_size=172e-6, distance=0.0516)
    inc = {"alpha_i_deg": math.degrees(math.atan(3.0 / 300.0)), "alpha_c_deg": 0.15}
    rows, cols = np.mgrid[0:256, 0:256].astype(np.float64)
    bx, by = g.beam_center
    r = np.hypot(cols - bx, rows - by)
    shadow, band = gisaxs.vertical_factor(g, inc, 1.0)
    lam = 2e4 / (1.0 + (r / 60.0) ** 2) * (shadow * (1.0 + band))[:, None] + 2000.0
    ang = math.radians(62.0)
    along = (cols - bx) * math.cos(ang) + (rows - by) * math.sin(ang)
    across = (rows - by) * math.cos(ang) - (cols - bx) * math.sin(ang)
    stop = (r <= 15.0) | ((along >= 0) & (np.abs(across) <= 1.5))
    lam *= 1.0 - (1.0 - 1e-3) * ndimage.gaussian_filter(stop.astype(np.float64), 0.8)
    counts = np.random.default_rng(0).poisson(lam)
    ok = bc.valid_pixels(counts)
    y_h = float(gisaxs.row_at_exit_angle(g, inc, 0.0))
    chord = _chord(counts, ok, bx + 4.0, y_h)
    assert chord is not None
    assert abs(chord[0] - bx) <= 1.0 and abs(chord[1] - math.sqrt(15.0**2 - 5.0**2)) <= 2.0
    fits = _chord_circles(counts, ok, bx + 4.0, horizon.Cut(y_h, 0.5), 1)
    assert fits and math.hypot(fits[0][1] - bx, fits[0][2] - by) <= 0.5
