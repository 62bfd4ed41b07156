"""Beam centre of grazing-incidence frames: mirror column and specular geometry."""

import math

import numpy as np

from scattertag.beam import center as bc
from scattertag.beam import dips
from scattertag.beam.grazing import (
    STOP_SINGLE,
    _band,
    _column_profile,
    _column_stops,
    _specular,
    grazing_candidate,
)
from scattertag.beam.pyramid import pyramid
from scattertag.geometry import Geometry
from scattertag.simulate import gisaxs
from test_beam_center import calibrant_frame


def grazing_frame(seed: int = 0) -> tuple[np.ndarray, Geometry]:
    """A 400 x 400 GISAXS frame drawn with the simulator's geometry: a diffuse isotropic
    term cut at the film's horizon, the specular rod with its reflection spot at
    alpha_f = alpha_i, a flat background; Poisson counts. Beam at (203.3, 352.6)."""
    g = Geometry(shape=(400, 400), beam_center=(203.3, 352.6))
    inc = {"alpha_i_deg": 0.3, "alpha_c_deg": 0.15}
    rows, cols = np.mgrid[0:400, 0:400]
    r = np.hypot(cols - g.beam_center[0], rows - g.beam_center[1])
    shadow, band = gisaxs.vertical_factor(g, inc, 2.0)
    lam = 2e3 / (1.0 + (r / 30.0) ** 2) * (shadow * (1.0 + band))[:, None]
    index, values = gisaxs.rod(g, g.beam_center[0], 1.0, inc, 0.3)
    lam.ravel()[index] += 300.0 * values
    spot = gisaxs.row_at_exit_angle(g, inc, inc["alpha_i_deg"])
    lam += 3e3 * np.exp(-0.5 * ((cols - g.beam_center[0]) ** 2 + (rows - spot) ** 2) / 1.5**2)
    counts = np.random.default_rng(seed).poisson(lam + 2.0)
    return counts, g


def test_grazing_frame_found_from_specular_geometry():
    counts, g = grazing_frame()
    ok = bc.valid_pixels(counts)
    cand, conf = grazing_candidate(counts, ok, pyramid(counts, ok)[2])
    assert math.hypot(cand.x - g.beam_center[0], cand.y - g.beam_center[1]) <= 2.0
    assert conf >= bc.CONFIDENCE_THRESHOLD
    est = bc.estimate_beam_center(counts)
    assert math.hypot(est.x - g.beam_center[0], est.y - g.beam_center[1]) <= 2.0


def test_grazing_leaves_transmission_rings_alone():
    s = calibrant_frame("center", 3)
    ok = bc.valid_pixels(s.counts, s.mask)
    assert grazing_candidate(s.counts, ok, pyramid(s.counts, ok)[2]) is None


def two_stop_frame(
    seed: int = 0, upper: bool = True, band: int | None = None
) -> tuple[np.ndarray, Geometry, float]:
    """A 600 x 500 GISAXS frame whose direct beam and specular spot are both behind small
    round stops (the beamline's usual practice; the simulator draws one stop only): the
    grazing frame's terms (diffuse scattering cut at the film's horizon, Yoneda band,
    specular rod and spot) plus the direct beam's halo, which the film does not cut; a
    stop of radius 12 px centred 1.3 px off the beam, one of radius 10 px over the spot
    2.1 px off it (stops are placed by hand), each passing 1e-4 with edges blurred over
    1 px. ``upper`` False leaves the spot's stop out and the spot hidden (a spot too weak
    to see); ``band`` puts a dark band of zeros 8 rows high across the frame that many
    rows below the beam (a module gap stored as zeros).
    Returns the counts, the geometry (beam at (251.4, 402.7)) and the horizon's row."""
    g = Geometry(shape=(600, 500), beam_center=(251.4, 402.7))
    inc = {"alpha_i_deg": 0.35, "alpha_c_deg": 0.15}
    bx, by = g.beam_center
    rows, cols = np.mgrid[0:600, 0:500].astype(np.float64)
    r = np.hypot(cols - bx, rows - by)
    shadow, yoneda = gisaxs.vertical_factor(g, inc, 2.0)
    lam = 2e3 / (1.0 + (r / 40.0) ** 2) * (shadow * (1.0 + yoneda))[:, None]
    index, values = gisaxs.rod(g, bx, 1.0, inc, 0.3)
    lam.ravel()[index] += 300.0 * values
    spot = float(gisaxs.row_at_exit_angle(g, inc, inc["alpha_i_deg"]))
    if upper:
        lam += 3e4 * np.exp(-0.5 * ((cols - bx) ** 2 + (rows - spot) ** 2) / 1.5**2)
    lam += 3e3 / (1.0 + (r / 8.0) ** 2) ** 1.5  # the direct beam's halo
    stops = [(bx + 1.0, by + 0.8, 12.0)] + ([(bx + 2.0, spot - 0.6, 10.0)] if upper else [])
    for sx, sy, radius in stops:
        d = np.hypot(cols - sx, rows - sy) - radius
        lam *= 1e-4 + (1.0 - 1e-4) * 0.5 * (1.0 + np.tanh(d / 1.0))
    counts = np.random.default_rng(seed).poisson(lam + 2.0)
    if band is not None:
        counts[int(by) + band : int(by) + band + 8] = 0
    return counts, g, float(gisaxs.row_at_exit_angle(g, inc, 0.0))


def test_two_stops_about_the_horizon_give_the_direct_beam():
    counts, g, _ = two_stop_frame()
    ok = bc.valid_pixels(counts)
    ring = pyramid(counts, ok)[2]
    assert _specular(counts, ok, g.beam_center[0]) is None  # the spot is behind its stop
    y, w, evidence = _column_stops(counts, ok, g.beam_center[0], ring)
    assert evidence == 1.0 and abs(y - g.beam_center[1]) <= 2.0 and w <= 2.0
    cand, conf = grazing_candidate(counts, ok, ring)
    assert cand.method == "grazing"
    assert math.hypot(cand.x - g.beam_center[0], cand.y - g.beam_center[1]) <= 2.0
    assert conf >= bc.CONFIDENCE_THRESHOLD
    est = bc.estimate_beam_center(counts)
    assert math.hypot(est.x - g.beam_center[0], est.y - g.beam_center[1]) <= 2.0
    assert est.confidence >= bc.CONFIDENCE_THRESHOLD


def test_the_direct_beam_stop_lies_below_the_horizon():
    """The stop below the horizon (y grows down: exit angle -alpha_i) is the direct
    beam's, the one above covers the specular spot; the film's shadow between the horizon
    and the beam's halo is a dark interval too, whose top is the horizon (not a stop)."""
    counts, g, horizon = two_stop_frame()
    ok = bc.valid_pixels(counts)
    profile = _column_profile(counts, ok, g.beam_center[0])
    rows = np.flatnonzero(np.isfinite(profile))
    found = sorted(dips.find_dips(profile[rows], rows, 200), key=lambda d: d.middle)
    assert len(found) == 3
    spot, film, beam = found
    assert spot.middle < horizon < beam.middle
    assert abs(beam.middle - (g.beam_center[1] + 0.8)) <= 1.0  # the lower stop's centre row
    assert abs(film.top - horizon) <= dips.DIP_SIDE


def _graze(counts: np.ndarray) -> tuple:
    """:func:`_grazing` of a frame: (candidate, confidence) or None."""
    ok = bc.valid_pixels(counts)
    return grazing_candidate(counts, ok, pyramid(counts, ok)[2])


def test_one_stop_below_the_horizon_is_weaker_evidence():
    counts, g, _ = two_stop_frame(upper=False)
    ok = bc.valid_pixels(counts)
    y, _, evidence = _column_stops(counts, ok, g.beam_center[0], pyramid(counts, ok)[2])
    assert evidence == STOP_SINGLE < 1.0 and abs(y - g.beam_center[1]) <= 2.0
    assert _graze(counts)[1] < _graze(two_stop_frame()[0])[1]


def test_a_band_across_the_frame_is_no_stop():
    """A band of zeros across the frame below the beam's stop darkens the column like a
    stop, but the columns aside too: :func:`_band` tells it from the stop."""
    counts, g, _ = two_stop_frame(band=30)
    ok = bc.valid_pixels(counts)
    x = g.beam_center[0]
    profile = _column_profile(counts, ok, x)
    rows = np.flatnonzero(np.isfinite(profile))
    found = {round(d.middle): d for d in dips.find_dips(profile[rows], rows, 200)}
    band = [d for m, d in found.items() if abs(m - (g.beam_center[1] + 34)) <= 2]
    stop = [d for m, d in found.items() if abs(m - g.beam_center[1]) <= 2]
    assert len(band) == 1 and len(stop) == 1
    assert _band(counts, ok, x, band[0], 200) and not _band(counts, ok, x, stop[0], 200)
    y, _, evidence = _column_stops(counts, ok, x, pyramid(counts, ok)[2])
    assert evidence == 1.0 and abs(y - g.beam_center[1]) <= 2.0
