"""Geometry: q and chi maps against pyFAI, PONI round trips, resizing."""

import re

import numpy as np
import pytest

from scattertag.geometry import (
    REFERENCE_DISTANCE,
    REFERENCE_ENERGY,
    REFERENCE_PIXEL_SIZE,
    DetectorValues,
    Geometry,
    GeometryOptions,
    MissingBeamCenter,
)
from scattertag.simulate import Recipe


def test_q_map_matches_pyfai(tmp_path):
    pyFAI = pytest.importorskip("pyFAI")
    geo = Geometry(
        shape=(120, 90), beam_center=(20.3, -15.0), pixel_size=172e-6, distance=1.2, energy=12.0
    )
    ai = pyFAI.load(str(geo.to_poni(tmp_path / "g.poni")))
    q_pyfai = ai.qArray(geo.shape) / 10.0  # nm^-1 -> A^-1
    np.testing.assert_allclose(geo.q_map, q_pyfai, rtol=1e-5)


def test_poni_round_trip(tmp_path):
    geo = Geometry(
        shape=(1000, 1000),
        beam_center=(-40.0, 930.5),
        pixel_size=75e-6,
        distance=0.594,
        energy=8.8984,
    )
    back = Geometry.from_poni(geo.to_poni(tmp_path / "g.poni"))
    assert back.shape == geo.shape
    np.testing.assert_allclose(back.beam_center, geo.beam_center, atol=1e-6)
    assert back.pixel_size == pytest.approx(geo.pixel_size)
    assert back.distance == pytest.approx(geo.distance)
    assert back.energy == pytest.approx(geo.energy)


def test_chi_convention():
    geo = Geometry(shape=(11, 11), beam_center=(5, 5))
    assert geo.chi_map[5, 10] == pytest.approx(0.0)  # +x (columns)
    assert geo.chi_map[10, 5] == pytest.approx(np.pi / 2)  # +y (rows)
    assert geo.r_map[5, 5] == 0.0


def test_agbh_first_ring_radius():
    # AgBH d = 58.38 A -> q1 = 0.1076 1/A; at 8.8984 keV, 0.594 m, 75 um: about 100 pixels.
    geo = Geometry(shape=(10, 10), beam_center=(0, 0))
    r = geo.radius_of_q(0.1076)
    lam = geo.wavelength
    two_theta = 2 * np.arcsin(0.1076 * lam / (4 * np.pi))
    assert r == pytest.approx(0.594 * np.tan(two_theta) / 75e-6)
    assert geo.q_of_radius(r) == pytest.approx(0.1076)


def test_resized_keeps_q():
    geo = Geometry(shape=(1000, 1000), beam_center=(100.0, 900.0))
    small = geo.resized((250, 250))
    # the same physical point (a pixel corner) has the same q on both samplings
    assert small.q_of_radius(10) == pytest.approx(geo.q_of_radius(40), rel=1e-9)
    assert small.beam_on_frame and geo.beam_on_frame
    assert small.q_max == pytest.approx(geo.q_max, rel=0.01)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"shape": (-1, 10), "beam_center": (0, 0)}, "shape"),
        ({"shape": (10, 10), "beam_center": (np.nan, 0)}, "beam_center"),
        ({"shape": (10, 10), "beam_center": (0, 0), "distance": -1}, "distance"),
        ({"shape": (10, 10), "beam_center": (0, 0), "energy": 0}, "energy"),
    ],
)
def test_invalid_geometry_names_parameter(kwargs, word):
    with pytest.raises(ValueError, match=word):
        Geometry(**kwargs)


def test_missing_poni_names_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.poni"):
        Geometry.from_poni(tmp_path / "nope.poni")


def test_reference_detector_is_the_default():
    geo = Geometry((10, 10), (1.0, 2.0))
    assert (geo.pixel_size, geo.distance, geo.energy) == (
        REFERENCE_PIXEL_SIZE,
        REFERENCE_DISTANCE,
        REFERENCE_ENERGY,
    )
    assert Recipe().pixel_size == REFERENCE_PIXEL_SIZE and Recipe().energy == REFERENCE_ENERGY


def test_options_from_user_units_and_text():
    opts = GeometryOptions.from_user(("12.5", 30), None, None, "172", "1.5", 12.0, "2")
    geo, source = opts.resolve((100, 80))
    assert source == "given" and geo.beam_center == (12.5, 30.0)
    assert geo.pixel_size == pytest.approx(172e-6) and geo.distance == 1.5 and geo.energy == 12.0
    assert opts.frame == 2 and geo.shape == (100, 80)
    for bad, message in [
        ({"beam_center": ("abc", 5)}, "beam_x must be a number, got 'abc'"),
        ({"beam_center": (1.0,)}, "two numbers"),
        ({"beam_center": (1, 2), "pixel_size_um": 0}, "pixel_size must be in"),
        ({"beam_center": (1, 2), "energy_kev": "nan"}, "energy_kev must be finite"),
        ({"frame": -1}, "frame must be an integer >= 0"),
        ({"frame": "1.5"}, "frame must be an integer >= 0"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            GeometryOptions.from_user(**bad)


def test_options_precedence_given_poni_header_reference(tmp_path):
    poni = Geometry((50, 60), (-40.0, 30.5), 100e-6, 2.0, 10.0).to_poni(tmp_path / "g.poni")
    header = DetectorValues((5.0, 6.0), 172e-6, 3.0, None)
    geo, source = GeometryOptions(poni=poni, distance=1.0).resolve((50, 60), ("header", header))
    assert source == "poni" and geo.beam_center == pytest.approx((-40.0, 30.5))
    assert geo.distance == 1.0 and geo.pixel_size == pytest.approx(100e-6)  # given > PONI
    geo, source = GeometryOptions((1.0, 2.0), poni=poni).resolve((50, 60), ("header", header))
    assert source == "given" and geo.beam_center == (1.0, 2.0)
    geo, source = GeometryOptions().resolve((50, 60), ("header", header))
    assert source == "header" and geo.beam_center == (5.0, 6.0)
    assert geo.pixel_size == 172e-6 and geo.energy == REFERENCE_ENERGY  # header silent: reference
    with pytest.raises(MissingBeamCenter, match="no beam centre"):
        GeometryOptions().resolve((50, 60), ("header", DetectorValues(pixel_size=1e-4)))
