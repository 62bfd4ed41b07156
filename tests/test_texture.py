"""The cake's optional sub-cell texture channel (ViewSpec.cake_texture): ~0 for counting noise,
large for a grainy ring, blind to masked pixels, and absent unless asked for."""

import dataclasses

import numpy as np
import pytest

from scattertag.features.views import Cake, RadialAxis, ViewMaker, ViewSpec
from scattertag.geometry import Geometry

SPEC = ViewSpec(orders=4, zeros=8, fb_size=64, cake_texture=4)
GEOMETRY = Geometry((384, 384), (180.3, 201.7))
Q0 = 0.0626  # 1/A: a ring 110 px from the beam, all on the frame
TEXTURE = 4  # channel of the texture in a frame-unit cake


@pytest.fixture(scope="module")
def maker() -> ViewMaker:
    return ViewMaker(SPEC, GEOMETRY)


def ring(peak: float, angular: np.ndarray | float = 1.0, background: float = 2.0) -> np.ndarray:
    """Expected counts: a Gaussian ring at Q0 (sigma 1 % of Q0) times ``angular`` on a flat
    background."""
    q = GEOMETRY.q_map
    return background + peak * angular * np.exp(-0.5 * ((q - Q0) / (0.01 * Q0)) ** 2)


def grains(count: int = 300, width_deg: float = 0.5, seed: int = 1) -> np.ndarray:
    """(H, W) angular profile of ``count`` grains of ``width_deg`` at random azimuths, mean 1."""
    rng = np.random.default_rng(seed)
    centres, weights = rng.uniform(-np.pi, np.pi, count), rng.exponential(1.0, count)
    grid = np.linspace(-np.pi, np.pi, 4096, endpoint=False)
    offset = (grid[:, None] - centres[None, :] + np.pi) % (2 * np.pi) - np.pi
    profile = (weights * np.exp(-0.5 * (offset / np.radians(width_deg)) ** 2)).sum(axis=1)
    return np.interp(GEOMETRY.chi_map, grid, profile / profile.mean(), period=2 * np.pi)


def ring_column(image: np.ndarray) -> np.ndarray:
    """The texture of the cells of the cake column holding the ring (brightest mean)."""
    mean = np.where(image[2] > 0.5, image[0], 0.0).mean(axis=0)
    column = int(np.argmax(mean))
    return image[TEXTURE][image[2][:, column] > 0.5, column]


@pytest.mark.parametrize("peak", [0.0, 10.0, 1e3, 1e7])
def test_counting_noise_on_a_smooth_ring_or_flat_field_reads_about_zero(maker, peak):
    rng = np.random.default_rng(0)
    image = maker.image(rng.poisson(ring(peak)).astype(np.uint32))
    assert image.shape == (5, 64, 256)
    texture = image[TEXTURE]
    assert texture.min() >= 0.0 and texture.max() <= 1.0
    # chi2 with 2 degrees of freedom: ~1 % of cells beyond an excess of 3.6 (channel 0.17)
    assert np.quantile(texture, 0.99) < 0.2
    assert np.median(ring_column(image)) < 0.05


@pytest.mark.parametrize("level", [0.01, 1.0, 1e6])
def test_flat_fields_from_almost_empty_to_bright_read_about_zero(maker, level):
    counts = np.random.default_rng(1).poisson(np.full(GEOMETRY.shape, level))
    assert np.quantile(maker.image(counts.astype(np.uint32))[TEXTURE], 0.99) < 0.2


@pytest.mark.parametrize("peak", [30.0, 1e5])
def test_a_grainy_ring_lights_up(maker, peak):
    image = maker.image(np.random.default_rng(2).poisson(ring(peak, grains())).astype(np.uint32))
    assert np.median(ring_column(image)) > 0.4


def test_masked_pixels_are_ignored():
    mask = np.ones(GEOMETRY.shape, bool)
    mask[150:170, :] = False  # a module gap across the ring
    maker = ViewMaker(SPEC, GEOMETRY, mask)
    counts = np.random.default_rng(3).poisson(ring(1e4)).astype(np.float64)
    zeros, hot = counts.copy(), counts.copy()
    zeros[~mask], hot[~mask] = 0.0, 1e9
    image = maker.image(zeros)
    assert np.array_equal(image, maker.image(hot))
    # the cells the gap cuts are weighed by their valid pixels: no edge lights up
    assert np.quantile(image[TEXTURE], 0.99) < 0.2 and np.median(ring_column(image)) < 0.05
    # a pixel marked bad in the frame itself (negative, NaN) is left out as well
    broken = zeros.copy()
    broken[~mask] = np.nan
    assert np.array_equal(image, maker.image(broken))


def test_default_views_are_unchanged_and_the_texture_comes_last():
    default = dataclasses.replace(SPEC, cake_texture=0)
    assert "cake_texture" not in default.to_dict()  # described (and cache-keyed) as before
    assert "cake_texture" not in default.fields_for("joint")
    assert default.image_shape == (4, 64, 256) and SPEC.image_shape == (5, 64, 256)
    assert ViewSpec.from_dict(SPEC.to_dict()) == SPEC
    assert SPEC.fields_for("image")["cake_texture"] == 4
    counts = np.random.default_rng(4).poisson(ring(1e3, grains())).astype(np.uint32)
    plain, plain_coeff = ViewMaker(default, GEOMETRY)(counts)
    with_texture, coeff = ViewMaker(SPEC, GEOMETRY)(counts)
    assert np.array_equal(coeff, plain_coeff)
    assert np.array_equal(with_texture[:4], plain)
    q = dataclasses.replace(SPEC, image_space="qcake")
    image = ViewMaker(q, GEOMETRY)(counts)[0]
    assert q.image_shape == image.shape == (6, 64, 256)
    assert np.all(image[4] == 1.0)
    assert image[5].max() > 0.4  # channel 4 stays the "in q" flag, the texture is last


def test_spec_validation():
    for bad in (1, 2, 17):
        with pytest.raises(ValueError, match="cake_texture"):
            ViewSpec(cake_texture=bad)


def test_cake_set_up_again_from_its_state_gives_the_same_texture():
    axis = RadialAxis(1.5, 500.0, 128)
    cake = Cake(GEOMETRY.shape, GEOMETRY.beam_center, 32, axis, texture=6)
    again = Cake(GEOMETRY.shape, GEOMETRY.beam_center, 32, axis, cake.state(), texture=6)
    counts = np.random.default_rng(5).poisson(ring(1e3, grains())).astype(np.float32)
    valid = np.ones(GEOMETRY.shape, bool)
    weights = cake.weights(valid)
    log = ViewMaker(SPEC, GEOMETRY)._log
    first = cake(counts, weights, log, valid)
    assert first.shape == (5, 32, 128) and first[4].max() > 0.4
    assert np.array_equal(first, again(counts, weights, log, valid))
