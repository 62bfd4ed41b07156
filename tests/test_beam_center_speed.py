"""The beam-centre estimate's shortcuts give what the long ways give (1 Dec, speed)."""

import math

import numpy as np
import pytest
from scipy import ndimage

from scattertag.beam import center as bc
from scattertag.beam import disks, edges, horizon
from scattertag.beam.gradient import (
    Field,
    _field,
    coherence,
    gradient_field,
    lines_meet,
    meeting_point,
    solve2,
)
from scattertag.beam.polish import (
    FINE_WINDOW,
    POLISH_BAND,
    POLISH_FEW_ARCS,
    _fine_level,
    _near_ridges,
    _retrace,
    _sharpness,
)
from scattertag.beam.pyramid import (
    _smooth,
    block_sums,
    central_differences,
    exact_block_sums,
    level_from_sums,
    pixels,
    pyramid,
    valid_counts,
)
from scattertag.beam.radial import climb, isotropy
from scattertag.beam.rings import _hessian, _hessian_maps, fit_arcs, level_ridges, ridges
from scattertag.beam.shadow import find_shadows
from scattertag.beam.symmetry import _partners, bilinear, refine_symmetry, symmetry_reach

CX, CY = 412.4, 377.8


def ring_frame(size: int = 800, seed: int = 0) -> np.ndarray:
    """Poisson counts of five Gaussian rings about (CX, CY) on a diffuse background, with a
    dead band of pixels (not all valid)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    r = np.hypot(xx - CX, yy - CY)
    rings = sum(np.exp(-0.5 * ((r - r0) / 2.0) ** 2) for r0 in (60, 110, 170, 240, 330))
    mean = 50 + 2000 / (1 + (r / 50) ** 2) + 300 * rings
    counts = np.random.default_rng(seed).poisson(mean).astype(np.float64)
    counts[:, 200:204] = -1  # a module gap
    return counts


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return ring_frame()


def test_ring_level_keeps_the_polish_levels_sums(frame):
    """The ring level built through the half-size blocks keeps them, equal to direct sums."""
    ok = bc.valid_pixels(frame)
    ring = pyramid(frame, ok)[2]
    assert ring.b % 2 == 0 and ring.finer is not None
    sums, n = ring.finer
    half = ring.b // 2
    np.testing.assert_array_equal(sums, block_sums(np.where(ok, frame, 0), half))
    np.testing.assert_array_equal(n, block_sums(ok, half))
    np.testing.assert_array_equal(block_sums(sums, 2), block_sums(np.where(ok, frame, 0), ring.b))


def test_hessian_at_pixels_is_np_gradients(frame):
    """_hessian at chosen pixels equals the full-array central differences np.gradient takes
    of the gradient in float32."""
    ring = pyramid(frame, bc.valid_pixels(frame))[2]
    gy, gx = (d.astype(np.float32) for d in ring.grad)
    gyy, gyx = np.gradient(gy)
    gxx = np.gradient(gx, axis=1)
    iy, ix = np.nonzero(ring.interior(4))
    got = _hessian(ring, iy, ix)
    for a, b in zip(got[:3], (gxx, gyx, gyy)):
        np.testing.assert_array_equal(a, b[iy, ix])
    assert np.all(got[3] <= got[4])
    maps = _hessian_maps(ring)  # the same floats as whole maps, border left out
    for a, b in zip(got, maps):
        np.testing.assert_array_equal(a, b[iy - 1, ix - 1])


def test_ridges_near_everything_is_the_full_trace(frame):
    ring = pyramid(frame, bc.valid_pixels(frame))[2]
    full = ridges(ring)
    near = ridges(ring, near=np.ones(ring.g.shape, bool))
    assert full.count == near.count >= 4
    for f in ("x", "y", "w", "label", "rows", "cols"):  # the maps' path and the gathers'
        np.testing.assert_array_equal(getattr(full, f), getattr(near, f))


def test_polish_traces_only_near_the_ring_levels_arcs(frame):
    """The polish level's ridges lie within the band about the ring level's ridge pixels, on
    a crop of the level, and the polished fit is as close to the centre as a trace of the
    whole polish level."""
    ok = bc.valid_pixels(frame)
    ring = pyramid(frame, ok)[2]
    level = level_from_sums(*ring.finer, ring.b // 2, 1.5)
    band = _near_ridges(level_ridges(ring), ring, level.b, level.g.shape, POLISH_BAND)
    assert 0.01 < band.mean() < 0.5  # a band about the arcs, not the frame
    crop, rd = _retrace(*ring.finer, ring.b // 2, ring)
    assert crop.b == level.b and crop.g.size < level.g.size
    assert rd.rows.size > rd.x.size > 0 and band[rd.rows, rd.cols].all()
    assert np.all(np.hypot(rd.x - np.rint(rd.x), rd.y - np.rint(rd.y)) <= 0.71)  # crests
    start = level.from_frame(CX + 0.8, CY - 0.6)
    errors = []
    for traced in (rd, ridges(level)):
        x, y, _, arcs = fit_arcs(traced, start)
        fx, fy = level.to_frame(x, y)
        errors.append(math.hypot(fx - CX, fy - CY))
        assert arcs >= 4
    assert errors[0] < 0.2 and errors[1] < 0.2


def test_drops_are_the_windows_medians():
    v = np.random.default_rng(3).normal(size=57)
    k = 4
    slow = [np.median(v[j - k : j]) - np.median(v[j : j + k]) for j in range(k, v.size - k)]
    np.testing.assert_array_equal(horizon.drops(v, k), slow)


def test_bilinear_samples_every_map_at_once():
    """A plane a + b x + c y is sampled exactly; each of the K maps gets its own samples."""
    yy, xx = np.mgrid[0:20, 0:30].astype(np.float64)
    maps = [1 + 0.5 * xx - 0.25 * yy, xx * 0 + 7, 2 * yy]
    x, y = np.array([0.0, 3.5, 28.99, 12.25]), np.array([0.0, 7.75, 18.5, 19.0])
    got = bilinear(maps, x, y)
    assert len(got) == 3 and got[0].shape == (4,)
    np.testing.assert_allclose(got[0], 1 + 0.5 * x - 0.25 * y, atol=1e-12)
    np.testing.assert_allclose(got[1], 7.0, atol=1e-12)
    np.testing.assert_allclose(got[2], 2 * y, atol=1e-12)


def test_partners_share_a_fraction_bit_for_bit(frame):
    """The partners 2c - p of whole pixels p, their corners and weights taken once from 2c,
    give what floor, round and :func:`bilinear` of each partner give, float for float,
    among them fractions of 2c that are 0 or 1/2 (np.rint rounds half to even; the last row
    and column read the corner before them)."""
    level = pyramid(frame, frame >= 0)[1]
    rows, cols = level.g.shape
    iy, ix = (v.astype(np.float64) for v in np.nonzero(level.interior(1)))
    kp = (iy * cols + ix).astype(np.int64)
    inner = level.interior(1).ravel()
    starts = [(CX / 4, CY / 4), (49.75, 60.25), (40.5, 30.25), (40.25, 30.5)]
    starts += [(cols - 1.0, 30.3), ((cols - 1) / 2, 30.3), (cols - 1.0, rows - 1.0)]
    starts += [tuple(v) for v in np.random.default_rng(4).uniform(-5.0, cols + 5.0, (20, 2))]
    for cx, cy in starts:
        qx, qy = 2 * cx - ix, 2 * cy - iy
        inside = (qx >= 0) & (qx <= cols - 1) & (qy >= 0) & (qy <= rows - 1)
        qi, qj = np.rint(qy[inside]).astype(np.int64), np.rint(qx[inside]).astype(np.int64)
        use = np.flatnonzero(inside)[inner.take(qi * cols + qj)]
        got_use, got = _partners(level, ix, iy, kp, np.array([cx, cy]))
        assert np.array_equal(got_use, use)
        for a, b in zip(got, bilinear(level.smooth_grad, qx[use], qy[use])):
            assert np.array_equal(a, b)


def test_few_arcs_are_traced_again_everywhere():
    """A ring level with under POLISH_FEW_ARCS arcs: the finer level is traced in full."""
    yy, xx = np.mgrid[0:1000, 0:1000].astype(np.float64)
    r = np.hypot(xx - 500.3, yy - 480.6)
    mean = 40 + 400 * (
        np.exp(-0.5 * ((r - 150) / 3.0) ** 2) + np.exp(-0.5 * ((r - 300) / 3.0) ** 2)
    )
    counts = np.random.default_rng(4).poisson(mean).astype(np.float64)
    ring = pyramid(counts, bc.valid_pixels(counts))[2]
    assert 0 < level_ridges(ring).count < POLISH_FEW_ARCS
    level, rd = _retrace(*ring.finer, ring.b // 2, ring)
    whole = ridges(level_from_sums(*ring.finer, ring.b // 2, 1.5))
    assert level.g.shape == ring.finer[0].shape
    np.testing.assert_array_equal(rd.x, whole.x)


def test_shadows_are_found_once_per_level(frame):
    """The candidates and the glow fallback share one search of the ring level's shadows."""
    counts = frame.copy()
    counts[300:420, 350:470] *= 1e-4  # a square stop's shadow
    ring = pyramid(counts, bc.valid_pixels(counts))[2]
    side = max(counts.shape)
    first = ring.shadows(side)
    assert ring.shadows(side) is first and first.count >= 1
    again = find_shadows(ring.g, ring.ok, ring.b, side)
    np.testing.assert_array_equal(first.label, again.label)


# ---- session 4: the same numbers, fewer passes ------------------------------------------
def test_order_stats_are_numpys_bit_for_bit():
    """median and percentile give numpy's floats on small and large arrays, with ties,
    sorted input and NaN (then numpy's own answer)."""
    from scattertag.beam import order_stats

    rng = np.random.default_rng(5)
    arrays = [
        rng.normal(size=3),
        rng.normal(size=10),
        rng.integers(0, 4, size=5001).astype(np.float64),  # ties across the bracket
        np.sort(rng.gamma(2.0, 3.0, size=20000)),  # sorted: a strided sample still brackets
        np.abs(rng.standard_cauchy(size=62500)),
    ]
    for a in arrays:
        assert order_stats.median(a) == float(np.median(a))
        for q in (0.0, 0.5, 20.0, 50.0, 90.0, 95.0, 100.0):
            assert order_stats.percentile(a, q) == float(np.percentile(a, q))
    a = rng.normal(size=8000)
    a[17] = np.nan
    assert math.isnan(order_stats.median(a)) and math.isnan(order_stats.percentile(a, 20))
    rows = rng.normal(size=(40, 61))
    rows[rng.random(rows.shape) < 0.3] = np.nan  # odd and even counts of values per row
    np.testing.assert_array_equal(order_stats.nanmedian_rows(rows), np.nanmedian(rows, axis=1))


def test_boxes_are_ndimages_filters():
    """box_all, box_any, dilate_cross and close_cross equal scipy.ndimage's filters on bool masks,
    windows larger than the mask included."""
    from scattertag.beam import boxes

    rng = np.random.default_rng(6)
    for shape, p in (((40, 31), 0.9), ((7, 50), 0.5), ((3, 2), 0.7), ((25, 25), 0.05)):
        a = rng.random(shape) < p
        u8 = a.view(np.uint8)
        for w in (1, 2, 4, 8):
            k = 2 * w + 1
            low = ndimage.minimum_filter(u8, size=k, mode="constant", cval=0).astype(bool)
            high = ndimage.maximum_filter(u8, size=k, mode="constant", cval=0).astype(bool)
            np.testing.assert_array_equal(boxes.box_all(a, w), low)
            np.testing.assert_array_equal(boxes.box_any(a, w), high)
        for n in (1, 2, 3):
            np.testing.assert_array_equal(
                boxes.dilate_cross(a, n), ndimage.binary_dilation(a, iterations=n)
            )
            np.testing.assert_array_equal(
                boxes.close_cross(a, n), ndimage.binary_closing(a, iterations=n)
            )
        for got, want in zip(boxes.nonzero2d(a), np.nonzero(a)):
            np.testing.assert_array_equal(got, want)


def test_valid_zeroes_integer_counts_once():
    """_valid: the zeroed counts are np.where(ok, counts, 0), saturation dropped from both."""
    rng = np.random.default_rng(7)
    counts = rng.poisson(5.0, size=(64, 80)).astype(np.uint32)
    counts[3, :6] = 5000  # saturated: the maximum on 6 pixels, over 20 times the mean
    counts[10, 10] = np.iinfo(np.uint32).max  # an Eiger gap
    valid = np.ones(counts.shape, bool)
    valid[:, 40] = False
    ok, zeroed = valid_counts(counts, valid)
    assert not ok[3, :6].any() and not ok[10, 10] and not ok[:, 40].any()
    np.testing.assert_array_equal(ok, bc.valid_pixels(counts, valid))
    np.testing.assert_array_equal(zeroed, np.where(ok, counts, 0))
    assert valid_counts(counts.astype(np.float32), valid)[1] is None  # floats: zeroed later


def test_climb_is_the_plain_pattern_search(frame):
    """_climb (each point scored once) ends where the plain search, scoring every
    neighbour each time, ends."""
    fine = pyramid(frame, bc.valid_pixels(frame))[1]
    px = pixels(fine)

    def plain(start, step, last):
        cx, cy = start
        best = isotropy(px, cx, cy)
        while step >= last:
            for dx, dy in ((step, 0), (-step, 0), (0, step), (0, -step)):
                score = isotropy(px, cx + dx, cy + dy)
                if score > best:
                    best, cx, cy = score, cx + dx, cy + dy
                    break
            else:
                step /= 2
        return cx, cy, best

    for start in ((40.3, 61.2), (120.0, 80.5)):
        assert climb(px, start, 4.0, 0.25) == plain(start, 4.0, 0.25)


def test_block_sums_of_whole_counts_are_the_strided_float_sums():
    """block_sums of bools and of non-negative integers (summed in the smallest unsigned
    type that holds them, rows first) equals the float64 sums a strided slice at a time, for
    every block size, and so do sums of those sums (a pyramid's levels from each other);
    negative or large integers take the float path."""
    rng = np.random.default_rng(3)
    for dtype in (bool, np.uint8, np.uint16, np.int32, np.uint32, np.int64):
        a = rng.integers(0, 2 if dtype is bool else 5000, (61, 47)).astype(dtype)
        for b in (1, 2, 3, 4, 8, 16):
            want = np.zeros((61 // b, 47 // b))
            for i in range(b):
                for j in range(b):
                    want += a[i : want.shape[0] * b : b, j : want.shape[1] * b : b]
            got = block_sums(a, b)
            assert got.dtype == np.float64
            np.testing.assert_array_equal(got, want)
            exact = exact_block_sums(a, b)
            assert exact.dtype.kind == "u"
            np.testing.assert_array_equal(exact, want)
            np.testing.assert_array_equal(block_sums(exact, 2), block_sums(want, 2))
    big = np.full((4, 4), 2**31, np.uint32)  # block sums over 2^32: float64, still exact
    np.testing.assert_array_equal(block_sums(big, 2), np.full((2, 2), 2.0**33))
    assert exact_block_sums(big, 2).dtype == np.float64
    neg = np.full((4, 4), -3, np.int32)
    np.testing.assert_array_equal(block_sums(neg, 2), np.full((2, 2), -12.0))


def test_window_level_is_the_whole_level_where_the_fine_polish_reads(frame):
    """_fine_level builds the finest level over a window about the centre only: its maps
    where point symmetry and its sharpness read equal the whole level's, and so do their
    results, from centres on the rings, near the border, over a shadow and off the frame."""
    shaded = frame.copy()
    shaded[300:340, 380:420] = 0.5  # a dark patch: shadow blocks near the centre
    ok = bc.valid_pixels(shaded)
    ring = pyramid(shaded, ok)[2]
    sums, n = ring.finer
    whole = level_from_sums(sums, n, ring.b // 2, 1.5)
    radius = FINE_WINDOW * max(sums.shape)
    reach = symmetry_reach(radius)
    for fx, fy in ((CX, CY), (420.0, 330.0), (50.0, 390.0), (795.0, 100.0), (-3000.0, 400.0)):
        level = _fine_level(ring, fx, fy)
        x, y = level.from_frame(fx, fy)
        i, j = math.floor(y), math.floor(x)
        read = (
            slice(max(i - math.ceil(reach), 0), max(i + math.ceil(reach) + 2, 0)),
            slice(max(j - math.ceil(reach), 0), max(j + math.ceil(reach) + 2, 0)),
        )
        for got, want in (
            (level.smooth, whole.smooth),
            (level.grad[0], whole.grad[0]),
            (level.grad[1], whole.grad[1]),
            (level.interior(1), whole.interior(1)),
        ):
            np.testing.assert_array_equal(got[read], want[read])
        a = refine_symmetry(whole, (x, y), ramp=False, radius=radius)
        b = refine_symmetry(level, (x, y), ramp=False, radius=radius)
        np.testing.assert_array_equal(a, b)
        if math.isfinite(a[0]):
            assert _sharpness(whole, *a[:2], radius) == _sharpness(level, *a[:2], radius)


def test_distance_to_bright_is_exact_on_the_shadows_within_reach(frame):
    """The shadows' distance map, taken over their bounding box and the reach about it, is
    ndimage's over the whole level on the shadows' blocks within the reach, and never less
    elsewhere; the shadows' peaks (np.maximum.at) are ndimage.maximum's."""
    stopped = frame.copy()
    yy, xx = np.mgrid[0:800, 0:800]
    stopped[np.hypot(xx - CX, yy - CY) < 40] = 0  # a disk beamstop on an arm to the border
    stopped[370:386, : int(CX)] = 0
    stopped[700:720, 700:720] = 0  # a small dark square far from it
    ok = bc.valid_pixels(stopped)
    ring = pyramid(stopped, ok)[2]
    shadows = ring.shadows(800)
    assert shadows.count >= 2
    full = ndimage.distance_transform_edt(~shadows.bright)
    on = shadows.label > 0
    for reach in (3.0, 8.0, 40.0):
        got = disks._distance_to_bright(shadows, reach)
        near = on & (full <= reach)
        np.testing.assert_array_equal(got[near], full[near])
        assert np.all(got[on] >= full[on])
    want = ndimage.maximum(full, shadows.label, index=np.arange(1, shadows.count + 1))
    peak = np.zeros(shadows.count + 1)
    np.maximum.at(peak, shadows.label.ravel(), full.ravel())
    np.testing.assert_array_equal(peak[1:], want)


def test_small_solves_match_numpys():
    """Cramer's rule for the 2 x 2 solves and cofactors for the 3 x 3 inverses give numpy's
    numbers to rounding, and flag a singular matrix."""
    rng = np.random.default_rng(5)
    for _ in range(20):
        a = rng.normal(size=(2, 2))
        h, b = a @ a.T, rng.normal(size=2)
        x, y, det = solve2(h[0, 0], h[0, 1], h[1, 1], b[0], b[1])
        np.testing.assert_allclose([x, y], np.linalg.solve(h, b), rtol=1e-9, atol=1e-12)
        assert det == pytest.approx(np.linalg.det(h), rel=1e-9, abs=1e-12)
        a3 = rng.normal(size=(3, 3))
        det3, inv3 = edges.det_inv(a3 @ a3.T)
        assert det3 == pytest.approx(np.linalg.det(a3 @ a3.T), rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(inv3, np.linalg.inv(a3 @ a3.T), rtol=1e-7, atol=1e-9)
    assert math.isnan(solve2(1.0, 1.0, 1.0, 1.0, 2.0)[0])
    assert edges.det_inv(np.ones((3, 3)))[0] == 0.0


def test_edge_distance_is_the_padded_distance_transform():
    from scattertag.beam.boxes import EdgeDistance

    rng = np.random.default_rng(5)
    for p in (0.0, 0.01, 0.2, 0.7):
        ok = rng.random((37, 53)) >= p
        want = ndimage.distance_transform_edt(np.pad(ok, 1))[1:-1, 1:-1]
        edge = EdgeDistance(ok)
        for iy, ix in zip(rng.integers(0, 37, 40), rng.integers(0, 53, 40)):
            assert edge[iy, ix] == want[iy, ix]


def test_valleys_reuse_the_ring_levels_smoothing_negated_exactly():
    """Without dark blocks the valleys' level (-g over the valid blocks) smooths to the ring
    level's smoothing negated, bit for bit: _valley_starts takes it (and its gradient)."""
    rng = np.random.default_rng(2)
    counts = rng.poisson(50.0 * (2.0 + np.sin(np.arange(400) / 9.0))[None, :], (400, 400))
    ok, zeroed = valid_counts(counts, None)
    ring = pyramid(counts, ok, zeroed)[2]
    assert not ring.dark.any()
    fresh = _smooth(-ring.g, ring.ok, ring.sigma)
    assert np.array_equal(fresh, -ring.smooth)
    gy, gx = np.gradient(fresh)
    assert np.array_equal(gy, -ring.grad[0]) and np.array_equal(gx, -ring.grad[1])


def _masked_smooth(a: np.ndarray, lit: np.ndarray) -> np.ndarray:
    """The long way of the levels' smoothing: Gaussian (sigma 1.5) of the lit values over
    the Gaussian of the lit mask, 0 where that is under 1e-3."""
    m = lit.astype(np.float64)
    num = ndimage.gaussian_filter(a * m, 1.5, mode="constant", truncate=3.0)
    den = ndimage.gaussian_filter(m, 1.5, mode="constant", truncate=3.0)
    return np.where(den > 1e-3, num / np.maximum(den, 1e-3), 0.0)


def test_level_kernels_are_the_long_ways():
    """The levels' shortcuts give the long ways' floats: central_differences is np.gradient,
    the all-lit smoothing (its normaliser kept per shape) the masked one, and the log of the
    block means read from a table of whole sums (integer sums) log1p of each mean."""
    rng = np.random.default_rng(5)
    a = rng.normal(size=(37, 53))
    for got, want in zip(central_differences(a), np.gradient(a)):
        assert got.tobytes() == want.tobytes()
    lit = np.ones(a.shape, bool)
    want = _masked_smooth(a, lit)
    assert _smooth(a, lit, 1.5).tobytes() == want.tobytes()
    assert _smooth(a, lit, 1.5).tobytes() == want.tobytes()  # the kept normaliser
    lit[5:9, 10:30] = False
    assert _smooth(a, lit, 1.5).tobytes() == _masked_smooth(a, lit).tobytes()
    counts = rng.poisson(rng.choice([0.3, 30.0, 3000.0], size=(128, 96))).astype(np.uint32)
    ok = rng.random(counts.shape) > 0.05
    c = counts * ok
    for b in (2, 4):
        whole = level_from_sums(exact_block_sums(c, b), exact_block_sums(ok, b), b, 1.5)
        floats = level_from_sums(block_sums(c, b), block_sums(ok, b), b, 1.5)
        for k in ("g", "ok", "lit", "dark"):
            assert getattr(whole, k).tobytes() == getattr(floats, k).tobytes()


def test_a_levels_gradient_field_is_taken_once():
    """gradient_field is kept by its level (the candidates and the fallbacks share it), and
    a kept field's lines meet where a fresh field's do."""
    ring = pyramid(ring_frame(), bc.valid_pixels(ring_frame()))[0]
    field = gradient_field(ring)
    assert gradient_field(ring) is field
    fresh = _field(ring, 20000)
    assert fresh.x.tobytes() == field.x.tobytes() and fresh.w.tobytes() == field.w.tobytes()
    assert lines_meet(field) == lines_meet(fresh)


def test_a_wider_interior_grows_from_a_narrower_one():
    """Level.interior(w) taken from interior(w - 1) (a 3 x 3 box more) is the direct one."""
    rng = np.random.default_rng(7)
    frame = ring_frame()
    ok = bc.valid_pixels(frame) & (rng.random(frame.shape) > 0.001)
    ring = pyramid(frame, ok)[2]
    direct = [
        ndimage.minimum_filter(ring.lit, 2 * w + 1, mode="constant", cval=0) for w in (1, 2, 3, 4)
    ]
    for w in (1, 2, 3, 4):  # each from the one before
        np.testing.assert_array_equal(ring.interior(w), direct[w - 1])


def test_single_precision_field_meets_where_a_double_one_does(frame):
    """The gradient field is float32 (half the passes' memory); the lines' meeting point,
    its error and the coherence are those of the same samples in float64 to rounding."""
    fine = pyramid(frame, bc.valid_pixels(frame))[1]
    field = gradient_field(fine)
    assert {v.dtype for v in (field.x, field.y, field.nx, field.ny, field.w)} == {
        np.dtype(np.float32)
    }
    wide = Field(*(v.astype(np.float64) for v in (field.x, field.y, field.nx, field.ny, field.w)))
    start = fine.from_frame(CX + 3.0, CY - 2.0)
    got, ref = meeting_point(field, start), meeting_point(wide, start)
    assert math.hypot(got[0] - ref[0], got[1] - ref[1]) < 1e-3
    assert got[2] == pytest.approx(ref[2], rel=1e-4)
    cx, cy = fine.from_frame(CX, CY)
    assert coherence(field, cx, cy) == pytest.approx(coherence(wide, cx, cy), abs=1e-5)
    assert coherence(field, cx, cy) > 0.5


# ---- session 16: kept Gaussian kernels, the polish level's floor once ------------------
def test_kept_gaussian_kernels_are_gaussian_filters():
    """gaussian (a kept kernel, gaussian_filter's correlate1d passes) gives
    ndimage.gaussian_filter's array bit for bit: modes, truncations, sigmas, dtypes (a bool
    mask stays bool, as scipy returns it), a kernel wider than the array, asked twice."""
    from scattertag.beam.gaussian import gaussian

    rng = np.random.default_rng(16)
    a = rng.normal(size=(23, 41))
    for mode in ("constant", "nearest", "reflect"):
        for truncate in (2.0, 3.0, 4.0):
            for sigma in (1.0, 1.5, 4.0, 7.3):
                want = ndimage.gaussian_filter(a, sigma, mode=mode, truncate=truncate)
                for _ in range(2):  # the second reads the kept kernel
                    got = gaussian(a, sigma, mode=mode, truncate=truncate)
                    assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
    m = rng.random((30, 30)) > 0.3
    for b in (m, m.astype(np.float64), rng.integers(0, 9, size=(30, 30))):
        want = ndimage.gaussian_filter(b, 1.5, mode="constant", truncate=3.0)
        got = gaussian(b, 1.5, mode="constant", truncate=3.0)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_gaussian_without_scipys_private_kernel_builder_is_gaussian_filter(monkeypatch):
    """Where a scipy release drops its private kernel builder, gaussian calls
    ndimage.gaussian_filter itself: the same array, and no kernel kept."""
    from scattertag.beam import gaussian as g

    monkeypatch.setattr(g, "_BUILD_KERNEL", None)
    monkeypatch.setattr(g, "_KERNELS", {})
    a = np.random.default_rng(3).normal(size=(17, 29))
    got = g.gaussian(a, 2.3, mode="nearest", truncate=3.0)
    want = ndimage.gaussian_filter(a, 2.3, mode="nearest", truncate=3.0)
    assert got.tobytes() == want.tobytes() and g._KERNELS == {}


def test_the_polish_levels_floor_is_taken_once(monkeypatch):
    """The fine polish's windows and the retrace of a ring level with few arcs read one
    dark floor of the polish level (one 20th percentile of its block means a frame, not one
    a window and one a trace), the floor level_from_sums takes of the whole level."""
    from scattertag.beam import pyramid as pm

    yy, xx = np.mgrid[0:1000, 0:1000].astype(np.float64)
    r = np.hypot(xx - 500.3, yy - 480.6)
    mean = 40 + 400 * (
        np.exp(-0.5 * ((r - 150) / 3.0) ** 2) + np.exp(-0.5 * ((r - 300) / 3.0) ** 2)
    )
    counts = np.random.default_rng(4).poisson(mean).astype(np.uint32)
    ok = bc.valid_pixels(counts)
    ring = pyramid(counts, ok)[2]
    sums, n = ring.finer
    b = ring.b // 2
    whole = level_from_sums(sums, n, b, 1.5)
    asked = []
    floor = pm.dark_floor

    def counted(mean: np.ndarray) -> float:
        asked.append(mean.size)
        return floor(mean)

    monkeypatch.setattr(pm, "dark_floor", counted)
    for x, y in ((500.3, 480.6), (520.0, 470.0)):
        _fine_level(ring, x, y)
    level, _ = _retrace(sums, n, b, ring)
    assert asked == [sums.size]  # the polish level's blocks, once
    assert level.lit.tobytes() == whole.lit.tobytes()
    assert level.dark.tobytes() == whole.dark.tobytes()


def test_band_sums_of_integer_counts_are_the_running_sums_differences():
    """horizon's band sums of integer counts (up to 32 bits), summed directly, are the
    differences of the running sums along the rows bit for bit; float counts take those."""
    from scattertag.beam.horizon import _band_sums

    rng = np.random.default_rng(16)
    use = rng.random((300, 241)) > 0.1
    for counts in (
        rng.poisson(50.0, (300, 241)).astype(np.uint16),
        rng.integers(0, 2**32 - 1, (300, 241), dtype=np.uint32),
        rng.integers(-1, 2**31 - 1, (300, 241), dtype=np.int32),
        rng.gamma(2.0, 30.0, (300, 241)),
    ):
        vals = np.where(use, counts, 0)
        n = np.hstack([np.zeros((300, 1)), np.cumsum(use, axis=1, dtype=np.float64)])
        s = np.hstack([np.zeros((300, 1)), np.cumsum(vals, axis=1)])
        band = _band_sums(use, counts)
        for a, b in ((100, 141), (70, 171), (0, 241), (5, 6)):
            nb, sb = band(a, b)
            assert nb.tobytes() == (n[:, b] - n[:, a]).tobytes()
            assert sb.tobytes() == (s[:, b] - s[:, a]).tobytes()


def test_a_shadowless_mask_takes_one_pass(monkeypatch):
    """shadow_mask stops after a first pass that finds no shadow block (a second would
    average the same blocks, valid & ~dark = valid, to the same empty mask); a shadow takes
    both passes."""
    from scattertag.beam import shadow

    mean = np.full((120, 120), 300.0)  # even light
    valid = np.ones(mean.shape, bool)
    valid[:, 90:92] = False
    calls = []
    local_mean = shadow._local_mean

    def counted(*args):
        calls.append(1)
        return local_mean(*args)

    monkeypatch.setattr(shadow, "_local_mean", counted)
    assert not shadow.shadow_mask(mean, valid, 10.0).any() and len(calls) == 1
    mean[40:60, 70:85] = 0.5  # a stop's shadow: two passes
    calls.clear()
    assert shadow.shadow_mask(mean, valid, 10.0).any() and len(calls) == 2


def test_crest_and_plateau_are_taken_once_a_point(frame):
    """crest and plateau keep their value by the level and the point: asked again, the kept
    float, the one a fresh level gives."""
    from scattertag.beam import evidence

    ok = bc.valid_pixels(frame)
    ring = pyramid(frame, ok)[2]
    c, p = evidence.crest(ring, CX, CY), evidence.plateau(ring, CX, CY)
    assert ring.held(("crest", CX, CY)) == c and ring.held(("plateau", CX, CY)) == p
    assert evidence.crest(ring, CX, CY) == c and evidence.plateau(ring, CX, CY) == p
    fresh = pyramid(frame, ok)[2]
    assert evidence._crest(fresh, CX, CY) == c and evidence._plateau(fresh, CX, CY) == p
