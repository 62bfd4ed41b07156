"""Beam centre of grazing-incidence frames: mirror column and specular geometry."""

import math

import numpy as np

from scattertag.beam import center as bc
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
    cand, conf = bc._grazing(counts, ok, bc._pyramid(counts, ok)[2])
    assert math.hypot(cand.x - g.beam_center[0], cand.y - g.beam_center[1]) <= 2.0
    assert conf >= bc.CONFIDENCE_THRESHOLD
    est = bc.estimate_beam_center(counts)
    assert math.hypot(est.x - g.beam_center[0], est.y - g.beam_center[1]) <= 2.0


def test_grazing_leaves_transmission_rings_alone():
    s = calibrant_frame("center", 3)
    ok = bc.valid_pixels(s.counts, s.mask)
    assert bc._grazing(s.counts, ok, bc._pyramid(s.counts, ok)[2]) is None
