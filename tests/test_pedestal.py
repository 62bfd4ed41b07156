"""An integrating detector's pedestal is found and removed; a photon counter's background stays."""

import numpy as np
import pytest

from scattertag.features.pedestal import detector_pedestal, noise_ratio
from scattertag.features.views import ViewMaker, ViewSpec
from scattertag.geometry import Geometry

SHAPE = (300, 360)


def _ring(shape=SHAPE, centre=(170.0, 140.0)) -> np.ndarray:
    """A smooth pattern: a ring of 400 photons a pixel over a falling diffuse term."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    r = np.hypot(cols - centre[0], rows - centre[1])
    return 400.0 * np.exp(-0.5 * ((r - 80.0) / 3.0) ** 2) + 50.0 / (1 + (r / 30.0) ** 2)


def _integrating(photons: np.ndarray, rng, offset=1000.0, gain=2.0, noise=6.0) -> np.ndarray:
    """What a flat panel reads: offset + gain x Poisson photons + Gaussian read noise."""
    return offset + gain * rng.poisson(photons) + rng.normal(0.0, noise, photons.shape)


def test_a_flat_panels_offset_is_found_just_under_it():
    rng = np.random.default_rng(0)
    counts = _integrating(_ring() + 2.0, rng).astype(np.float32)
    valid = np.ones(SHAPE, bool)
    assert noise_ratio(counts, valid) < 0.1
    assert 1000.0 - 4 * 6.0 < detector_pedestal(counts, valid) < 1000.0 + 2.0 * 2


@pytest.mark.parametrize("background", [0.3, 20.0, 300.0])
def test_a_photon_counter_keeps_even_a_high_background(background):
    rng = np.random.default_rng(1)
    counts = rng.poisson(_ring() + background).astype(np.float32)
    assert detector_pedestal(counts, np.ones(SHAPE, bool)) == 0.0
    binned = rng.poisson(np.repeat(np.repeat(_ring() + background, 2, 0), 2, 1) / 4)
    binned = binned.reshape(SHAPE[0], 2, SHAPE[1], 2).sum(axis=(1, 3)).astype(np.float32)
    assert detector_pedestal(binned, np.ones(SHAPE, bool)) == 0.0  # sums of counters too


def test_constant_frames_and_masked_pixels_give_no_pedestal_from_them():
    valid = np.ones(SHAPE, bool)
    assert detector_pedestal(np.full(SHAPE, 1000.0, np.float32), valid) == 0.0  # no noise
    rng = np.random.default_rng(2)
    counts = _integrating(_ring() + 2.0, rng).astype(np.float32)
    valid[:, ::7] = False
    counts[~valid] = 0.0  # invalid pixels read 0 in ViewMaker: they must not lower it
    assert detector_pedestal(counts, valid) > 970.0
    assert detector_pedestal(counts, np.zeros(SHAPE, bool)) == 0.0


def test_views_of_an_offset_frame_match_the_frame_without_it():
    rng = np.random.default_rng(3)
    photons = _ring() + 2.0
    read = rng.poisson(photons)
    noise = rng.normal(0.0, 6.0, SHAPE)
    plain = (2.0 * read).astype(np.float32)  # the same photons on a noiseless counter
    offset = (2.0 * read + noise + 1000.0).astype(np.float32)
    geometry = Geometry(SHAPE, (170.0, 140.0))
    views = {}
    for mode in ("auto", "none"):
        maker = ViewMaker(ViewSpec(pedestal=mode, cake_radii=64, cake_angles=16), geometry)
        views[mode] = [maker(frame)[0] for frame in (plain, offset)]
    auto_gap = np.abs(views["auto"][0] - views["auto"][1]).mean()
    none_gap = np.abs(views["none"][0] - views["none"][1]).mean()
    # the pedestal is taken just under the offset: the darkest cells keep ~2.6 sigma of it
    assert auto_gap < 0.2 * none_gap


def test_view_spec_pedestal_values():
    assert ViewSpec().pedestal == "auto"
    assert ViewSpec.from_dict({"image_space": "cake"}).pedestal == "auto"  # older specs
    with pytest.raises(ValueError, match="pedestal"):
        ViewSpec(pedestal="always")


def test_show_draws_the_counts_the_views_were_made_of():
    from scattertag.plots.tagged_frame import _as_tagged

    rng = np.random.default_rng(4)
    valid = np.ones(SHAPE, bool)
    offset = _integrating(_ring() + 2.0, rng).astype(np.float32)
    drawn, note = _as_tagged(offset, valid, "auto")
    level = detector_pedestal(offset, valid)
    assert "pedestal" in note and np.allclose(drawn, np.maximum(offset - level, 0.0))
    assert _as_tagged(offset, valid, "none") == (offset, "")
    counter = rng.poisson(_ring() + 50.0).astype(np.float32)
    drawn, note = _as_tagged(counter, valid, "auto")
    assert note == "" and drawn is counter
