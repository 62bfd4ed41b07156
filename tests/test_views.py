"""The shared preprocessing: log scaling, masks, padding, resolution and count-scale stability."""

import math

import numpy as np
import pytest

from scattertag.features.views import ViewMaker, ViewSpec, area_weights, block_sum
from scattertag.geometry import Geometry

SPEC = ViewSpec(input_size=64, orders=6, zeros=8, fb_size=64, image_space="detector")


def ring_counts(
    geometry: Geometry, peak: float, q0: float = 0.06, background: float = 2.0
) -> np.ndarray:
    """Expected counts of an isotropic ring at q0 (1/A), width 0.01 1/A, on a flat background."""
    q = geometry.q_map
    return background + peak * np.exp(-(((q - q0) / 0.01) ** 2))


def magnitude(coeff: np.ndarray, spec: ViewSpec = SPEC) -> np.ndarray:
    """|c_nk| back from the log-magnitude channel."""
    return spec.coeff_floor * np.expm1(coeff[0] * math.log1p(1 / spec.coeff_floor))


def test_spec_round_trip_and_validation():
    spec = ViewSpec(input_size=128, orders=11, zeros=40)
    assert ViewSpec.from_dict(spec.to_dict()) == spec
    assert spec.coeff_shape == (3, 12, 40)
    with pytest.raises(ValueError, match="orders"):
        ViewSpec(orders=-1)
    with pytest.raises(ValueError, match="unknown fields"):
        ViewSpec.from_dict({"input_size": 64, "colour": "red"})


def test_shapes_range_and_constant_frame():
    geometry = Geometry((100, 100), (50.0, 40.0))
    maker = ViewMaker(SPEC, geometry)
    counts = np.full((100, 100), 1000, np.uint32)
    image, coeff = maker(counts)
    assert image.shape == (1, 64, 64) and image.dtype == np.float32
    assert coeff.shape == SPEC.coeff_shape and coeff.dtype == np.float32
    assert np.allclose(image, math.log1p(1000) / math.log1p(2**24), rtol=1e-5)
    # a constant frame is isotropic: order 0 dominates (the disk leaves the frame, so the
    # fit leaves some anisotropic residue)
    c = magnitude(coeff)
    assert c[0].max() > 0.2 and c[1:].max() < 0.2 * c[0].max()


def test_masked_and_bad_pixels_are_excluded_not_zero():
    geometry = Geometry((80, 120), (30.0, 60.0))
    rng = np.random.default_rng(0)
    counts = rng.poisson(ring_counts(geometry, 500)).astype(np.float64)
    mask = np.ones(counts.shape, bool)
    mask[:, 50:55] = False  # a module gap
    maker = ViewMaker(SPEC, geometry, mask)
    image, _ = maker(counts)
    hot = counts.copy()
    hot[:, 50:55] = 1e9  # whatever the gap holds must not matter
    hot[10, 10] = np.nan  # nor must a NaN or a negative (Pilatus-style) pixel
    hot[20, 90] = -2
    mask2 = mask.copy()
    mask2[10, 10] = mask2[20, 90] = False
    image2, coeff2 = maker(hot)
    image3, coeff3 = maker(counts, mask2)
    assert np.allclose(image2, image3) and np.allclose(coeff2, coeff3, atol=1e-5)
    assert np.allclose(image2, image, atol=0.02)  # one or two pixels fewer: nearly the same
    # partly masked output pixels average their valid input pixels only (zero counts in the
    # gap would drag them down); output pixels with no valid input are 0
    smooth = ring_counts(geometry, 500)
    masked, _ = maker(smooth)
    full, _ = ViewMaker(SPEC, geometry)(smooth)
    rows = slice(12, 52)  # output rows of the frame (rows 20..100 of the padded 120)
    assert np.allclose(masked[0, rows, [26, 29]], full[0, rows, [26, 29]], atol=0.01)
    assert np.all(masked[0, rows, 27:29] == 0)


def test_non_square_frame_keeps_rings_round():
    geometry = Geometry((60, 160), (80.0, 30.0))  # wide frame, beam in the middle
    maker = ViewMaker(SPEC, geometry)
    q0 = float(geometry.q_of_radius(25.0))  # a ring 25 px from the beam
    image, _ = maker(
        ring_counts(geometry, 1000, q0=q0, background=1.0) * (geometry.q_map > 0.5 * q0)
    )
    img = image[0]
    # padded to a centred square: the frame fills a band of rows, the rest is 0
    filled = np.flatnonzero(img.max(axis=1) > 0)
    assert filled[0] > 5 and filled[-1] < 58 and np.allclose(img[:5], 0)
    # same ring radius along x and along y (output pixel 0.4 input pixels)
    cx, cy = (np.array([80.0, 80.0]) + 0.5) * 64 / 160 - 0.5
    row, col = img[round(cy)], img[:, round(cx)]
    rx = np.abs(np.argmax(row[int(cx) + 2 :]) + int(cx) + 2 - cx)
    ry = np.abs(np.argmax(col[int(cy) + 2 :]) + int(cy) + 2 - cy)
    assert abs(rx - 10.0) <= 1 and abs(ry - rx) <= 1


def test_same_physics_at_different_sizes_gives_nearly_the_same_views():
    spec = ViewSpec(input_size=64, orders=6, zeros=8, fb_size=64, image_space="detector")
    views = []
    for size in (256, 512):
        geometry = Geometry((size, size), (0.3 * size, 0.6 * size), pixel_size=75e-6 * 1000 / size)
        views.append(ViewMaker(spec, geometry)(ring_counts(geometry, 2000)))
    (im_a, co_a), (im_b, co_b) = views
    assert np.abs(im_a - im_b).max() < 0.03
    assert np.linalg.norm(co_a - co_b) / np.linalg.norm(co_a) < 0.05


def test_coefficients_stable_from_1_to_1e7_counts():
    geometry = Geometry((128, 128), (20.0, 100.0))  # beam near a corner: mostly a fit
    mask = np.ones((128, 128), bool)
    mask[:, 60:64] = False
    maker = ViewMaker(SPEC, geometry, mask)
    shape = ring_counts(geometry, 1.0, background=0.0) + np.exp(-geometry.q_map / 0.02)
    magnitudes = []
    for scale in (1.0, 1e2, 1e4, 1e7):
        counts = np.random.default_rng(0).poisson(scale * shape).astype(np.uint32)
        image, coeff = maker(counts)
        assert np.isfinite(coeff).all() and np.abs(coeff).max() <= 1.0
        assert image.min() >= 0.0 and image.max() <= 1.0
        magnitudes.append(coeff[0, 0, 0])
    # brighter frames give larger, but never exploding, isotropic magnitudes
    assert np.all(np.diff(magnitudes) > 0) and magnitudes[0] > 0.1


def test_bad_shapes_are_named():
    geometry = Geometry((64, 64), (32.0, 32.0))
    with pytest.raises(ValueError, match=r"\(60, 64\).*\(64, 64\)"):
        ViewMaker(SPEC, geometry, np.ones((60, 64), bool))
    maker = ViewMaker(SPEC, geometry)
    with pytest.raises(ValueError, match=r"\(64, 63\).*\(64, 64\)"):
        maker(np.zeros((64, 63)))


CAKE = ViewSpec(
    input_size=64, orders=6, zeros=8, fb_size=64, image_space="cake", cake_angles=32, cake_radii=96
)


def cake_radius(spec: ViewSpec, column: float, side: int) -> float:
    """Radius (pixels) at the centre of cake column ``column``."""
    return (
        spec.cake_r_min
        * side
        * (spec.cake_r_max / spec.cake_r_min) ** ((column + 0.5) / spec.cake_radii)
    )


def test_cake_rings_are_columns_and_ratios_are_shifts():
    """Rings at r0 and sqrt(3) r0 land at their radii; moving r0 moves both by the same columns."""
    geometry = Geometry((200, 240), (70.3, 81.7))
    maker = ViewMaker(CAKE, geometry)
    r = geometry.r_map
    peaks = []
    for r0 in (25.0, 40.0):
        counts = 5 + 1000 * (
            np.exp(-(((r - r0) / 1.5) ** 2)) + np.exp(-(((r - math.sqrt(3) * r0) / 1.5) ** 2))
        )
        image, _ = maker(counts)
        assert image.shape == CAKE.image_shape == (4, 32, 96) and image.dtype == np.float32
        profile = image[0].mean(axis=0)
        first, second = sorted(np.argsort(profile)[-2:])
        assert cake_radius(CAKE, first, 240) == pytest.approx(r0, rel=0.05)
        assert cake_radius(CAKE, second, 240) == pytest.approx(math.sqrt(3) * r0, rel=0.05)
        peaks.append((first, second))
    assert peaks[1][1] - peaks[1][0] == pytest.approx(peaks[0][1] - peaks[0][0], abs=1)
    assert np.allclose(image[3], np.linspace(0, 1, 96)[None, :])


def test_cake_valid_fraction_and_peak_channel():
    """Masked pixels lower the valid fraction, are not averaged; a lone hot pixel is in the max."""
    geometry = Geometry((120, 120), (60.4, 59.8))
    counts = np.full((120, 120), 100.0)
    mask = np.ones((120, 120), bool)
    mask[:, :60] = False  # left half of the detector
    counts[60, 100] = 1e5  # a zinger on the right
    image, _ = ViewMaker(CAKE, geometry)(counts, mask)
    level = math.log1p(100) / math.log1p(2**24)
    rows_right, rows_left = slice(10, 22), np.r_[0:6, 26:32]  # azimuth about 0 and about pi
    seen = image[2] > 0
    off_level = ~np.isclose(image[0], level, rtol=1e-5) & seen
    assert (
        off_level.sum() == 1
    )  # masked pixels never pull the mean down; only the zinger's cell is off
    # (columns below ~40 are cells smaller than a pixel, all filled from the few pixels near the
    # centre)
    assert (
        image[2][rows_left][:, 40:].max() == 0 and np.median(image[2][rows_right][:, 60:80]) > 0.9
    )
    assert image[1].max() == pytest.approx(math.log1p(1e5) / math.log1p(2**24), rel=1e-5)
    assert image[1].max() - image[0].max() > math.log(10) / math.log1p(
        2**24
    )  # its cell mean: >10x lower


def test_image_space_fields_and_validation():
    """Cake settings shape only cake models; bad spaces and azimuth counts are named."""
    assert "cake_radii" not in SPEC.fields_for("image") and "input_size" in SPEC.fields_for("image")
    assert "cake_radii" in CAKE.fields_for("joint") and "input_size" not in CAKE.fields_for("image")
    with pytest.raises(ValueError, match="image_space"):
        ViewSpec(image_space="polar")
    with pytest.raises(ValueError, match="multiple of 4"):
        ViewSpec(image_space="cake", cake_angles=30)


def test_block_sum_matches_area_weights():
    rng = np.random.default_rng(0)
    a = rng.random((24, 24)).astype(np.float32)
    w = area_weights(24, 6)
    assert np.allclose(block_sum(a, 4), (w @ a @ w.T), rtol=1e-6)
    assert np.array_equal(block_sum(a > 0.5, 4), w @ (a > 0.5) @ w.T)


def test_views_follow_the_validity_of_each_frame():
    """Weights are reused only while the validity repeats: the views of a fresh maker."""
    spec = ViewSpec(orders=4, zeros=6, fb_size=32, cake_angles=8, cake_radii=16)
    geometry = Geometry((64, 64), (10.0, 50.0))
    rng = np.random.default_rng(1)
    counts = rng.poisson(100, (64, 64)).astype(np.uint32)
    hole = np.ones((64, 64), bool)
    hole[30:40, 20:36] = False
    maker = ViewMaker(spec, geometry)
    for mask in (hole, None, hole, None):
        image, coeff = maker(counts, mask)
        fresh_image, fresh_coeff = ViewMaker(spec, geometry)(counts, mask)
        assert np.array_equal(image, fresh_image)
        assert np.allclose(coeff, fresh_coeff, atol=1e-5)


def test_views_do_not_depend_on_the_frames_seen_before():
    """Shards must be byte-identical for any worker count and after a resume, and a CSV the
    same in any order: a frame with a few pixels of its own marked bad (-1) gives the same
    coefficients first, again, after other frames, and from a fresh maker (a second
    sighting used to be solved another way, ~1e-5 apart)."""
    rng = np.random.default_rng(9)
    geometry = Geometry((128, 128), (20.0, 100.0))
    mask = np.ones((128, 128), bool)
    mask[:, 60:64] = False
    frames = []
    for _ in range(3):
        counts = rng.poisson(30, (128, 128)).astype(np.int32)
        counts[rng.integers(0, 128, 12), rng.integers(0, 128, 12)] = -1  # hot pixels
        frames.append(counts)
    spec = ViewSpec(orders=6, zeros=8)
    maker = ViewMaker(spec, geometry, mask)
    first = [maker(c)[1] for c in frames]
    again = [maker(c)[1] for c in frames[::-1]][::-1]
    fresh = [ViewMaker(spec, geometry, mask)(c)[1] for c in frames]
    for a, b, c in zip(first, again, fresh):
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_weights_of_a_frame_with_a_few_lost_pixels_are_counted_afresh():
    """A frame's NaN block and hot pixels: its weights, from the static mask's less those
    pixels, are the counts computed afresh (working frame and cake), bit for bit."""
    spec = ViewSpec(orders=4, zeros=6, fb_size=32, cake_angles=8, cake_radii=16)
    geometry = Geometry((100, 90), (12.0, 70.0))
    mask = np.ones((100, 90), bool)
    mask[:, 40:43] = False
    maker = ViewMaker(spec, geometry, mask)
    rng = np.random.default_rng(2)
    for _ in range(3):
        valid = mask.copy()
        y, x = rng.integers(0, 80, 2)
        valid[y : y + 12, x : x + 12] = False
        valid[rng.integers(0, 100, 5), rng.integers(0, 90, 5)] = False
        weights = maker._weights(valid, False)
        assert maker._last is not None and maker._last[2] is not None  # from the static ones
        assert np.array_equal(weights["work"], block_sum(valid, maker.block, maker.offset))
        assert np.array_equal(weights[False], maker.cake.weights(valid))


def test_cake_cells_match_their_definition_at_symmetric_and_random_centres():
    """Each pixel's cake cell (computed in bands, radius as sqrt(x^2 + y^2)) is the one of
    the definition, np.hypot and np.arctan2 per pixel, also where pixels sit exactly on the
    cells' edges (integer and half-integer centres) and for a centre off the frame."""
    from scattertag.features.views import Cake, RadialAxis

    shape, angles = (180, 240), 16
    axis = RadialAxis(2.0, 300.0, 40)
    rows, cols = np.indices(shape)
    rng = np.random.default_rng(3)
    for cx, cy in [
        (120.0, 90.0),
        (119.5, 90.5),
        (0.0, 0.0),
        (-30.0, 200.0),
        *rng.uniform(0, 240, (3, 2)),
    ]:
        dx, dy = cols - cx, rows - cy
        j = np.floor(axis.position(np.hypot(dx, dy)))
        a = np.floor((np.arctan2(dy, dx) + np.pi) * angles / (2 * np.pi))
        a[a >= angles] = 0
        expected = np.where((j >= 0) & (j < axis.cells), a * axis.cells + j, -1).ravel()
        assert np.array_equal(Cake._cells(shape, (cx, cy), angles, axis), expected)
