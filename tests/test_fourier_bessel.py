"""Accuracy of the Fourier-Bessel transform against direct evaluation of the basis."""

import numpy as np
import pytest
import scipy.linalg
from scipy.special import jv

from scattertag.features import FourierBessel


def synthesise(shape, center, radius, a, fb):
    """Real image sum_{n=-N..N} a_nk psi_nk at pixel centres, by scipy's Bessel functions.

    Independent of the fast operator; J_n is evaluated once per distinct radius.
    """
    H, W = shape
    y, x = np.mgrid[0:H, 0:W]
    dx, dy = x - center[0], y - center[1]
    r2 = dx**2 + dy**2
    inside = r2 < radius**2
    radii, inverse = np.unique(r2[inside], return_inverse=True)
    radii = np.sqrt(radii)
    theta = np.arctan2(dy[inside], dx[inside])
    f = np.zeros(shape)
    for n, k in zip(*np.nonzero(a)):
        profile = jv(n, fb.j[n, k] * radii / radius)[inverse] * fb.norm[n, k]
        f[inside] += (1 if n == 0 else 2) * np.real(a[n, k] * np.exp(1j * n * theta)) * profile
    return f


def random_coefficients(rng, orders, zeros, count=None):
    """Complex (N+1, K) with Im a_0k = 0; ``count`` random non-zero entries (default: all)."""
    a = rng.normal(size=(orders + 1, zeros)) + 1j * rng.normal(size=(orders + 1, zeros))
    a[0] = a[0].real
    if count is not None:
        keep = np.zeros(a.size, bool)
        keep[rng.choice(a.size, count, replace=False)] = True
        keep[[0, a.size - 1]] = True  # always the slowest and the fastest basis function
        a[~keep.reshape(a.shape)] = 0
    return a


def rel(x, y):
    return np.linalg.norm(x - y) / np.linalg.norm(y)


@pytest.mark.parametrize(
    "shape, center, radius, orders, zeros, count",
    [
        ((256, 256), (127.5, 127.5), 128.0, 32, 32, 60),  # centred, full band
        ((256, 256), (100.0, 150.5), 95.0, 32, 32, 60),  # off-centre, disk fits
        ((256, 200), (99.5, 128.0), 99.0, 12, 12, None),  # non-square frame, every mode
        ((1000, 1000), (499.5, 499.5), 500.0, 32, 32, 14),  # 1000 x 1000
        ((1000, 1000), (350.0, 620.5), 340.0, 32, 32, 14),
    ],
)
def test_band_limited_round_trip(shape, center, radius, orders, zeros, count):
    rng = np.random.default_rng(0)
    fb = FourierBessel(shape, center, radius, orders, zeros)
    a = random_coefficients(rng, orders, zeros, count)
    f = synthesise(shape, center, radius, a, fb)
    assert fb.disk_in_frame
    assert fb.fast.degree == (1 if radius > 300 else 3)  # both "project" operators are tested
    b = fb.transform(f)  # full disk observed: "project"
    assert rel(b, a) < 1e-3
    assert rel(fb.reconstruct(a), f) < 1e-3
    # Parseval: coefficient energy = image energy on the disk
    energy = np.sum(np.abs(b[0]) ** 2) + 2 * np.sum(np.abs(b[1:]) ** 2)
    assert energy == pytest.approx(np.sum(f**2), rel=1e-3)


def test_rotation_changes_phases_only():
    """A smooth (not band-limited) pattern rotated by alpha: a_nk -> a_nk exp(-i n alpha)."""
    shape, center, radius = (256, 256), (130.0, 120.0), 110.0
    fb = FourierBessel(shape, center, radius, 16, 20)
    y, x = np.mgrid[0:256, 0:256]
    r, theta = np.hypot(x - center[0], y - center[1]), np.arctan2(y - center[1], x - center[0])

    def pattern(alpha):
        t = theta - alpha
        ring = np.exp(-(((r - 60) / 6) ** 2)) * (1 + 0.5 * np.cos(2 * t))
        spot = np.exp(-((r * np.cos(t) - 30) ** 2 + (r * np.sin(t) - 10) ** 2) / 50)
        return ring + spot

    alpha = 0.7
    a, b = fb.transform(pattern(0.0)), fb.transform(pattern(alpha))
    assert rel(np.abs(b), np.abs(a)) < 1e-3
    n = np.arange(17)[:, None]
    assert rel(b, a * np.exp(-1j * n * alpha)) < 1e-2  # the sign convention of theta


MASKED = [
    ("wedge and gaps", (127.5, 127.5), 12),  # 25 % of the disk masked
    ("centre near edge", (0.3 * 128 - 0.5, 127.5), 6),  # 31 % of the disk off the frame
]


@pytest.mark.parametrize("case, center, orders", MASKED)
def test_fit_recovers_missing_data(case, center, orders):
    """Band-limited images (N = K = orders) from partial data; the rim segment is ill-posed."""
    rng = np.random.default_rng(1)
    shape, radius, zeros = (256, 256), 128.0, orders
    fb = FourierBessel(shape, center, radius, orders, zeros)
    a = random_coefficients(rng, orders, zeros)
    f = synthesise(shape, center, radius, a, fb)
    y, x = np.mgrid[0:256, 0:256]
    mask = np.ones(shape, bool)
    if case == "wedge and gaps":
        theta = np.arctan2(y - center[1], x - center[0])
        mask &= (
            np.abs(np.angle(np.exp(1j * (theta - 1.0)))) > 0.1 * np.pi
        )  # beamstop wedge, 10 % of the disk
        mask &= (x % 40 >= 4) & (y % 50 >= 4)  # module gaps
        inside = np.hypot(x - center[0], y - center[1]) < radius
        assert 1 - mask[inside].mean() == pytest.approx(0.25, abs=0.02)
    fit = fb.transform(f, mask=mask, reg=1e-7)  # missing data: "fit" by default
    project = fb.transform(f, mask=mask, method="project")
    assert rel(fit, a) < 1e-2
    assert rel(project, a) > 0.1  # zero-filling is far off (see the benchmark note)


def test_fit_by_conjugate_gradients_matches_cholesky():
    rng = np.random.default_rng(2)
    shape, center, radius = (128, 128), (63.5, 63.5), 64.0
    dense = FourierBessel(shape, center, radius, 5, 6)
    iterative = FourierBessel(shape, center, radius, 5, 6, dense_limit=0)
    f = rng.normal(size=(2, *shape))
    mask = np.ones(shape, bool)
    mask[:, 70:80] = False
    a = dense.transform(f, mask=mask, reg=1e-2)
    b = iterative.transform(f, mask=mask, reg=1e-2, tol=1e-8, maxiter=500)
    assert rel(b, a) < 1e-4


def test_non_finite_pixels_are_masked_and_batches_match():
    rng = np.random.default_rng(3)
    fb = FourierBessel((96, 128), (60.0, 40.0), 50.0, 4, 5)
    f = rng.normal(size=(3, 96, 128))
    bad = f.copy()
    bad[1, 10:20, 30:40] = np.nan
    bad[2, 50, :] = np.inf
    mask = np.isfinite(bad)
    got = fb.transform(bad)
    for i in range(3):
        expected = fb.transform(f[i], mask=mask[i]) if i else fb.transform(f[i])
        assert np.allclose(got[i], expected, rtol=1e-5, atol=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="covers no pixel"):
        FourierBessel((64, 64), (500.0, 500.0), 10.0, 2, 2)
    fb = FourierBessel((64, 64), (32.0, 32.0), 30.0, 2, 3)
    with pytest.raises(ValueError, match=r"\(64, 64\).*\(64, 65\)"):
        fb.transform(np.zeros((64, 65)))
    with pytest.raises(ValueError, match=r"\(60, 64\).*\(64, 64\)"):
        fb.transform(np.zeros((64, 64)), mask=np.ones((60, 64), bool))
    with pytest.raises(ValueError, match="method"):
        fb.transform(np.zeros((64, 64)), method="zero-fill")
    with pytest.raises(ValueError, match="no observed pixel"):
        fb.transform(np.zeros((64, 64)), mask=np.zeros((64, 64), bool))
    with pytest.raises(ValueError, match="radius"):
        FourierBessel((64, 64), (32.0, 32.0), -1.0, 2, 3)


def factorised_matrix(fb: FourierBessel, pixels: np.ndarray) -> np.ndarray:
    """(n, n) float64 A^T M A as the fit factorises it: the upper triangle that
    ``normal_matrix(full=False)`` fills, mirrored. Its float32 products have other shapes
    than the full matrix's, so the BLAS may round them differently (~1e-7): the dense
    solves below must start from the same numbers to agree to 1e-9."""
    upper = fb.exact.normal_matrix(*fb._polar(pixels), full=False).astype(np.float64)
    return np.triu(upper) + np.triu(upper, 1).T


def test_normal_matrix_matches_the_operator():
    """A^T M A assembled on the polar grid equals the operator applied to unit vectors."""
    fb = FourierBessel((96, 128), (60.0, 40.0), 50.0, 4, 5)
    valid = np.ones(96 * 128, bool)
    valid[::7] = False
    seen = valid[fb.pixels]
    G = fb.exact.normal_matrix(*fb._polar(fb.pixels[seen]))
    columns = fb._normal_operator(valid)(np.eye(fb.n_unknowns))
    assert rel(G, columns) < 1e-5
    upper = fb.exact.normal_matrix(*fb._polar(fb.pixels[seen]), full=False)
    assert np.allclose(np.triu(upper), np.triu(G))


def test_small_holes_reuse_the_factor_of_the_mask_without_them():
    """A few pixels lost in one frame: Woodbury on the factor of the mask without them (the
    module gap, factorised once), the same answer, and the same numbers whatever came before."""
    rng = np.random.default_rng(4)
    shape, center, radius = (128, 128), (40.0, 90.0), 110.0  # the disk leaves the frame
    fb = FourierBessel(shape, center, radius, 6, 8)
    fresh = FourierBessel(shape, center, radius, 6, 8, low_rank_limit=0)
    f = rng.normal(size=shape)
    base = np.ones(shape, bool)
    base[:, 60:63] = False  # a module gap, in every frame: a large hole, kept
    fb.transform(f, mask=base)
    assert fb.cached_factors == 1
    frame = base.copy()
    frame[20:26, 100:105] = False  # a NaN block of this frame
    frame[70, 30] = False  # and a hot pixel
    got = fb.transform(f, mask=frame)
    assert fb.cached_factors == 1  # no new factorisation
    # exact algebra; the difference is the float32 assembly of either matrix (~1e-7) times
    # the condition number of the fit (~1 / reg = 1e3)
    assert rel(got, fresh.transform(f, mask=frame)) < 1e-4
    many = base.copy()
    many[:40] = False  # thousands of pixels: a factor of its own
    assert rel(fb.transform(f, mask=many), fresh.transform(f, mask=many)) < 1e-10
    assert fb.cached_factors == 2
    again = fb.transform(f, mask=frame)  # the same mask after others: solved the same way
    first = FourierBessel(shape, center, radius, 6, 8).transform(f, mask=frame)  # seen first
    assert np.array_equal(again, got) and np.array_equal(first, got)


def test_fit_coefficients_equal_a_direct_dense_solve():
    """The fit's coefficients, solved by blocked products on the cached factor (and by
    Woodbury for hot pixels), equal SciPy's dense solve of the same normal equations."""
    rng = np.random.default_rng(5)
    shape, center, radius, reg = (120, 140), (30.0, 90.0), 100.0, 1e-3  # the disk leaves
    fb = FourierBessel(shape, center, radius, 15, 36)  # 1116 unknowns: 2 blocks of rows
    f = rng.normal(size=(2, *shape)).astype(np.float32)
    gap = np.ones(shape, bool)
    gap[:, 50:54] = False  # a module gap, factorised
    seen = gap.ravel()[fb.pixels]
    G = factorised_matrix(fb, fb.pixels[seen])
    for hot in ([], [(60, 70), (100, 20)]):  # hot pixels: Woodbury on the gap's factor
        mask = gap.copy()
        U = np.zeros((0, len(G)))
        if hot:
            rows, cols = np.transpose(hot)
            mask[rows, cols] = False
            U = fb.exact.pixel_rows(*fb._polar(rows * shape[1] + cols)).astype(np.float64)
        rhs = fb._pack(fb.exact.analyse(fb.exact.S @ np.where(mask, f, 0).reshape(2, -1).T))
        u = scipy.linalg.solve(G - U.T @ U + reg * np.eye(len(G)), rhs.T, assume_a="pos")
        got = fb.transform(f, mask=mask, reg=reg)
        assert fb.cached_factors == 1
        assert rel(got, fb._unpack(u.T)) < 1e-9


def test_holes_of_a_frame_are_corrected_on_the_factor_of_the_base_mask():
    """A NaN block touching the module gap and hot pixels: with the mask every frame shares
    (``base``) given, no new factor, the dense solve's coefficients, and a correction of
    lower rank than the block's pixel count; without it the merged gap is factorised."""
    rng = np.random.default_rng(6)
    shape, center, radius, reg = (120, 140), (30.0, 90.0), 100.0, 1e-3
    fb = FourierBessel(shape, center, radius, 10, 20)
    f = rng.normal(size=shape).astype(np.float32)
    gap = np.ones(shape, bool)
    gap[:, 50:54] = False
    mask = gap.copy()
    mask[40:48, 54:62] = False  # touches the gap: one component with it
    mask[[10, 100], [100, 20]] = False
    got = fb.transform(f, mask=mask, reg=reg, base=gap)
    assert fb.cached_factors == 1  # the gap's, factorised once
    seen = gap.ravel()[fb.pixels]
    G = factorised_matrix(fb, fb.pixels[seen])
    holes = np.flatnonzero(seen & ~mask.ravel()[fb.pixels])  # into the disk's pixels
    U = fb.exact.pixel_rows(*fb._polar(fb.pixels[holes])).astype(np.float64)
    rhs = fb._pack(fb.exact.analyse(fb.exact.S @ np.where(mask, f, 0).reshape(-1, 1)))
    u = scipy.linalg.solve(G - U.T @ U + reg * np.eye(len(G)), rhs.T, assume_a="pos")
    assert rel(got, fb._unpack(u.T)[0]) < 1e-9
    Y = fb._correction(fb._cholesky(gap.ravel(), reg), holes)
    assert len(holes) == 65 and Y.shape[1] < 40  # an 8 x 8 block and hot pixels
    assert rel(fb.transform(f, mask=mask, reg=reg), got) < 1e-4  # labelled: a factor of its own
    assert fb.cached_factors == 2


def test_fit_at_the_shipped_regularisation_is_factorised_in_float32():
    """From FLOAT32_REG on the fit's factor is float32 (half the bytes, ~2x faster) and its
    coefficients stay within float32 rounding times the condition number (~100) of the
    float64 dense solve; below it, float64."""
    from scattertag.features.fourier_bessel import FLOAT32_REG

    rng = np.random.default_rng(7)
    shape, center, radius = (120, 140), (30.0, 90.0), 100.0  # the disk leaves the frame
    fb = FourierBessel(shape, center, radius, 15, 36)
    f = rng.normal(size=shape).astype(np.float32)
    G = factorised_matrix(fb, fb.pixels)
    rhs = fb._pack(fb.exact.analyse(fb.exact.S @ f.reshape(-1, 1)))
    for reg, dtype, tol in ((FLOAT32_REG, np.float32, 1e-4), (FLOAT32_REG / 10, np.float64, 1e-9)):
        u = scipy.linalg.solve(G + reg * np.eye(len(G)), rhs.T, assume_a="pos")
        got = fb.transform(f, mask=np.ones(shape, bool), method="fit", reg=reg)
        assert rel(got, fb._unpack(u.T)[0]) < tol
        assert [factor.dtype for _, factor in fb._gram_cache.items()][-1] == dtype
