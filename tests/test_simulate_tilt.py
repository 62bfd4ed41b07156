"""Tilted WAXS detectors: the geometry against pyFAI's, and rings drawn as its conics."""

import numpy as np
import pyFAI
import pytest
from pyFAI.geometry import Geometry as PyFAIGeometry

from scattertag.geometry import Geometry
from scattertag.simulate import Recipe, draw_experiment, simulate_image
from scattertag.simulate.experiment import catalogue_experiment
from scattertag.simulate.image import expose
from scattertag.simulate.scattering import ring_terms
from scattertag.simulate.tilt import (
    MAX_TWO_THETA,
    Tilt,
    detector_xy,
    equivalent_radius,
    frame_maps,
    largest_two_theta,
)

GEOMETRY = Geometry((120, 160), (40.3, 70.7), pixel_size=172e-6, distance=0.12, energy=12.0)


def _pyfai(geometry: Geometry, tilt: Tilt) -> PyFAIGeometry:
    """pyFAI's Fit2D geometry for the same detector, from Tilt.to_dict's names."""
    detector = pyFAI.detectors.Detector(geometry.pixel_size, geometry.pixel_size)
    g = PyFAIGeometry(detector=detector, wavelength=geometry.wavelength * 1e-10)
    cx, cy = geometry.beam_center
    names = tilt.to_dict()
    g.setFit2D(
        geometry.distance * 1e3,
        cx + 0.5,  # pyFAI's pixel coordinates start at the first pixel's corner
        cy + 0.5,
        tilt=names["tilt_deg"],
        tiltPlanRotation=names["tilt_plan_rotation_deg"],
        pixelX=geometry.pixel_size * 1e6,
        pixelY=geometry.pixel_size * 1e6,
    )
    return g


@pytest.mark.parametrize("tau, phi", [(0.0, 0.0), (30.0, 0.0), (25.0, 40.0), (35.0, -110.0)])
def test_tilted_maps_equal_pyfais_fit2d_geometry(tau, phi):
    tilt = Tilt(np.radians(tau), np.radians(phi))
    two_theta, chi, solid = frame_maps(GEOMETRY, tilt)
    g = _pyfai(GEOMETRY, tilt)
    shape = GEOMETRY.shape
    assert np.abs(g.center_array(shape, unit="2th_rad", scale=False) - two_theta).max() < 1e-9
    d_chi = np.angle(np.exp(1j * (g.center_array(shape, unit="chi_rad", scale=False) - chi)))
    assert np.abs(d_chi).max() < 1e-9
    # pyFAI's solid angle is relative to the point of normal incidence: cos^3(tau) of ours
    relative = g.solidAngleArray(shape, absolute=False)
    np.testing.assert_allclose(relative, solid * np.cos(tilt.angle) ** 3, rtol=1e-5)


def test_untilted_maps_are_the_geometrys():
    two_theta, chi, solid = frame_maps(GEOMETRY, Tilt(0.0, 0.7))
    np.testing.assert_allclose(equivalent_radius(GEOMETRY, two_theta), GEOMETRY.r_map, atol=1e-3)
    d_chi = np.angle(np.exp(1j * (chi - GEOMETRY.chi_map)))
    d_chi[GEOMETRY.r_map < 0.5] = 0.0
    assert np.abs(d_chi).max() < 1e-5
    np.testing.assert_allclose(solid, np.cos(two_theta) ** 3, rtol=1e-12)


def test_detector_xy_inverts_the_maps_and_misses_are_nan():
    tilt = Tilt(np.radians(35.0), np.radians(20.0))
    two_theta, chi, _ = frame_maps(GEOMETRY, tilt)
    x, y = detector_xy(GEOMETRY, tilt, equivalent_radius(GEOMETRY, two_theta), chi)
    rows, cols = np.mgrid[0 : GEOMETRY.shape[0], 0 : GEOMETRY.shape[1]]
    assert np.abs(x - cols).max() < 1e-6 and np.abs(y - rows).max() < 1e-6
    # a ray at 2 theta = 89 degrees towards the side tilted away never meets the plane
    normal_azimuth = np.arctan2(tilt.rotation()[1, 2], tilt.rotation()[0, 2])
    far = GEOMETRY.distance * np.tan(np.radians(89.0)) / GEOMETRY.pixel_size
    x, y = detector_xy(GEOMETRY, tilt, np.array([far]), np.array([normal_azimuth + np.pi]))
    assert np.isnan(x).all() and np.isnan(y).all()


def test_a_sharp_ring_on_a_tilted_detector_is_a_conic_of_constant_two_theta():
    recipe = Recipe(size=256, gisaxs_fraction=0.0)
    exp = catalogue_experiment(recipe, "Pilatus 1M", 0.15, 12.0, (0.5, 0.5))
    exp.tilt = Tilt(np.radians(30.0), np.radians(15.0))
    ring = {"q0": 1.5, "dq_rel": 0.01, "amplitude": 1e4, "style": "isotropic"}
    counts = expose(exp, ring_terms(exp, ring), np.random.default_rng(0), dark=0.0).counts
    bright = counts > 0.5 * np.percentile(counts[exp.mask], 99.9)
    assert bright.sum() > 50
    two_theta = _pyfai(exp.geometry, exp.tilt).center_array(exp.shape, unit="2th_rad", scale=False)
    expected = 2 * np.arcsin(1.5 * exp.geometry.wavelength / (4 * np.pi))
    assert np.abs(two_theta[bright] - expected).max() < np.radians(0.5)
    # the same pixels lie far from one circle about the direct-beam point: an ellipse
    radius = exp.geometry.r_map[bright]
    assert radius.max() - radius.min() > 0.2 * np.median(radius)


def test_catalogue_waxs_experiments_draw_tilts_within_the_angle_limit_reproducibly():
    recipe = Recipe(
        size=128, gisaxs_fraction=0.0, setups={"waxs": 1.0}, terms={"detector tilt": 1.0}
    )
    drawn = [draw_experiment(recipe, 3, i) for i in range(12)]
    tilted = [e for e in drawn if e.params["setup"] == "waxs"]  # some detectors are SAXS only
    assert len(tilted) >= 5 and all(e.tilt is not None for e in tilted)
    assert all(e.tilt is None for e in drawn if e.params["setup"] == "saxs")
    for exp in tilted:
        assert np.radians(5.0) * 0.7**6 <= exp.tilt.angle <= np.radians(40.0)
        assert largest_two_theta(exp.geometry, exp.tilt) <= MAX_TWO_THETA
        assert exp.params["tilt"] == exp.tilt.to_dict()
    again = draw_experiment(recipe, 3, tilted[0].index)
    assert again.tilt == tilted[0].tilt
    first, second = simulate_image(tilted[0], 0), simulate_image(again, 0)
    assert np.array_equal(first.counts, second.counts) and first.tags == second.tags


def test_the_first_versions_recipe_never_tilts():
    recipe = Recipe.legacy(128)
    assert recipe.terms["detector tilt"] == 0.0
    assert all(draw_experiment(recipe, 0, i).tilt is None for i in range(5))
