"""Expected counts with the beam centre moved, and the Cramer-Rao bound of the centre."""

import math

import numpy as np
import pytest

from conftest import make_experiment
from scattertag.simulate import Recipe, draw_experiment
from scattertag.simulate.fisher import (
    amplitude_derivatives,
    bound_from_renders,
    centre_bound,
    centre_covariance,
    hit_probability,
)
from scattertag.simulate.image import expected_counts, expose, image_terms, render
from scattertag.simulate.terms import Term

EQUAL = {"corner": 0.25, "center": 0.25, "edge": 0.25, "off": 0.25}


class Recorder:
    """A noise generator that keeps the expected counts ``expose`` draws from."""

    def poisson(self, lam):
        self.lam = np.array(lam, copy=True)
        return np.zeros(lam.shape, dtype=np.int64)

    def normal(self, loc, scale, shape):
        return np.zeros(shape)


# seed 0 at 128 px: 0 a paddle (flat panel), 9 GISAXS with a wedge and an environment
# shadow (flat panel), 12 a tilted WAXS detector with a wedge and a flat field, 20 a paddle
# on a photon counter, 33 a tilted detector with the beam off the frame
@pytest.mark.parametrize("index", [0, 9, 12, 20, 33])
def test_expected_counts_at_no_shift_are_what_expose_draws_from(index):
    exp = draw_experiment(Recipe(size=128, placements=EQUAL), 0, index)
    terms, settings = image_terms(exp, 0)
    noise = Recorder()
    expose(exp, terms, noise, **settings)  # type: ignore[arg-type]
    lam = noise.lam
    if exp.readout is not None:
        lam = lam * exp.readout["gain"] + exp.readout["offset"]
    mu = expected_counts(exp, 0)
    assert mu.shape == exp.shape
    assert np.array_equal(mu.ravel(), lam)
    assert np.array_equal(expected_counts(exp, 0, (0.0, 0.0)), mu)


def test_a_shift_moves_the_stop_and_the_pattern_not_the_detector():
    exp = draw_experiment(Recipe(size=128, placements=EQUAL), 0, 20)  # a paddle
    moved = exp.shifted(3.0, -2.0)
    cx, cy = exp.geometry.beam_center
    assert moved.geometry.beam_center == (cx + 3.0, cy - 2.0)
    assert moved.mask is exp.mask and moved.readout is exp.readout
    before = exp.beamstop.transmission_map(exp.shape)
    after = moved.beamstop.transmission_map(exp.shape)
    inner = (slice(10, -10), slice(10, -10))
    assert np.array_equal(np.roll(before, (-2, 3), axis=(0, 1))[inner], after[inner])
    assert moved.beamstop.params == exp.beamstop.params
    assert np.allclose(np.roll(exp.r_map, (-2, 3), axis=(0, 1))[inner], moved.r_map[inner])
    # a changed parameter moves the stop along its length, not the beam
    along = exp.shifted(0.0, 0.0, center=exp.beamstop.params["center"] + 4.0)
    assert along.geometry.beam_center == exp.geometry.beam_center
    assert not np.array_equal(along.beamstop.transmission_map(exp.shape), before)
    assert not np.array_equal(expected_counts(exp, 0, (1.0, 0.0)), expected_counts(exp, 0))


def spot(exp, photons, sigma, floor):
    """A renderer of an isotropic Gaussian spot of ``photons`` at the beam centre."""
    rows, cols = exp.shape
    y, x = np.mgrid[:rows, :cols].astype(float)

    def draw(shift=(0.0, 0.0)):
        cx, cy = exp.geometry.beam_center
        d2 = (x - cx - shift[0]) ** 2 + (y - cy - shift[1]) ** 2
        return floor + photons / (2 * math.pi * sigma**2) * np.exp(-0.5 * d2 / sigma**2)

    return draw


def test_the_bound_of_a_gaussian_spot_is_sigma_squared_over_n():
    exp = make_experiment(size=64, center=(31.3, 30.6))
    photons, sigma = 1e4, 2.5
    bound = bound_from_renders(exp, spot(exp, photons, sigma, 1e-9))
    np.testing.assert_allclose(np.diag(bound.covariance), sigma**2 / photons, rtol=0.03)
    assert abs(bound.covariance[0, 1]) < 0.01 * sigma**2 / photons
    # a read-noise floor costs information: the bound grows
    exp.readout = {"gain": 1.0, "offset": 0.0, "noise": 3.0}
    noisy = bound_from_renders(exp, spot(exp, photons, sigma, 1e-9))
    assert noisy.covariance[0, 0] > 1.2 * bound.covariance[0, 0]


@pytest.mark.parametrize(
    "kind, name, rate", [("paddle", "center", -1.0), ("wedge", "apex_offset", 1.0)]
)
def test_a_stop_free_along_its_length_fixes_the_beam_only_across_it(kind, name, rate):
    exp = make_experiment(size=96, center=(47.0, 40.0), beamstop=kind, seed=3)
    flat = Term("background.constant", "background", {}, values=np.full(96 * 96, 50.0))

    def draw(shift=(0.0, 0.0), **stop):
        moved = exp.shifted(*shift, **stop)
        return render(moved, [flat], dark=0.0).lam.reshape(exp.shape)

    known = bound_from_renders(exp, draw)
    free = bound_from_renders(exp, draw, (name, rate))
    wrong = bound_from_renders(exp, draw, (name, -rate))  # the stop moved with the beam
    assert np.all(np.isfinite(known.covariance)) and known.sigma_max < 0.5
    assert free.names == ("along", "across", name) and math.isinf(free.sigma_max)
    assert free.hit_probability(2.0) == 0.0 < known.hit_probability(2.0)
    assert math.isfinite(wrong.sigma_max)


def test_the_nuisance_schur_complement():
    info = np.array([[4.0, 1.0, 2.0], [1.0, 3.0, 0.0], [2.0, 0.0, 2.0]])
    np.testing.assert_allclose(centre_covariance(info), np.linalg.inv(info)[:2, :2])
    np.testing.assert_allclose(centre_covariance(info[:2, :2]), np.linalg.inv(info[:2, :2]))
    unfixed = info.copy()
    unfixed[2] = unfixed[:, 2] = 0.0  # a nuisance with no information drops out
    np.testing.assert_allclose(centre_covariance(unfixed), np.linalg.inv(info[:2, :2]))


@pytest.mark.parametrize("sigma", [0.05, 0.7, 2.0, 30.0])
def test_hit_probability_isotropic_is_rayleigh(sigma):
    expected = 1.0 - math.exp(-(2.0**2) / (2 * sigma**2))
    assert hit_probability(np.eye(2) * sigma**2, 2.0) == pytest.approx(expected, abs=1e-9)


def test_hit_probability_anisotropic_against_sampling():
    rng = np.random.default_rng(0)
    for sa, sb, angle in ((1.5, 0.3, 0.4), (4.0, 1e-4, 1.0), (0.01, 0.002, 2.0)):
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        cov = rot @ np.diag([sa**2, sb**2]) @ rot.T
        e = rng.multivariate_normal([0, 0], cov, 200_000)
        assert hit_probability(cov, 2.0) == pytest.approx(np.mean(np.hypot(*e.T) <= 2.0), abs=4e-3)
    assert hit_probability(np.full((2, 2), np.inf), 2.0) == 0.0


def test_centre_bound_of_a_simulated_frame_is_finite_and_named():
    exp = draw_experiment(Recipe(size=128, placements=EQUAL), 0, 0)  # a paddle
    bound = centre_bound(exp, 0)
    assert bound.names == ("along", "across", "center")
    assert bound.pixels > 0 and bound.information.shape == (3, 3)
    assert 0.0 <= bound.hit_probability(2.0) <= 1.0


@pytest.mark.parametrize("index", [9, 20])
def test_amplitude_derivatives_add_up_to_the_frame(index):
    exp = draw_experiment(Recipe(size=128, placements=EQUAL), 0, index)
    terms, settings = image_terms(exp, 0)
    columns = amplitude_derivatives(exp, 0)
    gain, offset = (
        (1.0, 0.0) if exp.readout is None else (exp.readout["gain"], exp.readout["offset"])
    )
    detector = [t for t in terms if t.role == "detector"]
    rest = render(exp, detector, **settings).lam * gain + offset  # with the dark counts
    total = np.sum(columns[:-3], axis=0) + rest
    np.testing.assert_allclose(total, expected_counts(exp, 0).ravel(), rtol=1e-9)
    assert np.all(columns[-3] == gain)  # a flat offset, then the ramps
    bound = centre_bound(exp, 0, free_model=True)
    assert len(bound.names) == bound.known + 1 + len(columns)
    assert bound.names[bound.known] == "log distance"
    assert np.array_equal(bound.covariance, centre_bound(exp, 0).covariance)
    # not knowing the amplitudes and the distance can only widen the bound
    assert np.all(np.linalg.eigvalsh(bound.free_covariance - bound.covariance) > -1e-12)
