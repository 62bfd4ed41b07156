"""Blocked Cholesky solves (BLAS products) against SciPy's LAPACK ones."""

import numpy as np
import pytest
import scipy.linalg

from scattertag.features.cholesky import Cholesky


def spd(n: int, seed: int = 0) -> np.ndarray:
    """A random symmetric positive definite (n, n) matrix with condition number ~1e4."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (q * np.logspace(-4, 0, n)) @ q.T


@pytest.mark.parametrize("lower", [False, True])
@pytest.mark.parametrize("n, min_block", [(300, 64), (257, 128), (5, 128), (40, 1), (1100, 512)])
def test_solve_and_whiten_match_lapack(n, min_block, lower):
    G = spd(n)
    c, low = scipy.linalg.cho_factor(G, lower=lower)  # the other triangle holds G: not read
    factor = Cholesky(c, low, min_block=min_block)
    b = np.random.default_rng(1).normal(size=(n, 3))
    x = scipy.linalg.cho_solve((c, low), b)
    assert np.allclose(factor.solve(b), x, rtol=0, atol=1e-9 * np.abs(x).max())
    assert np.allclose(factor.solve(b[:, 0]), x[:, 0], rtol=0, atol=1e-9 * np.abs(x).max())
    wide = np.random.default_rng(2).normal(size=(n, 40))  # a mask's small holes: 40 columns
    xw = scipy.linalg.cho_solve((c, low), wide)
    assert np.allclose(factor.solve(wide), xw, rtol=0, atol=1e-9 * np.abs(xw).max())
    w = factor.whiten(b)  # ||R^-T b||^2 = b^T G^-1 b
    assert np.allclose(np.sum(w * w, 0), np.sum(b * x, 0), rtol=1e-9)
    R = np.triu(c.T if low else c)
    assert np.allclose(factor.R, R, rtol=0, atol=1e-12)
    assert np.allclose(R.T @ w, b, atol=1e-10)
    assert np.allclose(R @ factor.back(w), w, atol=1e-10)  # back: R^-1, solve's second half
    again = Cholesky.from_packed(factor.packed.copy(), n, min_block)  # as the set-up cache does
    assert np.array_equal(again.solve(b), factor.solve(b))
    assert factor.packed.size < n * n / 2 + n * max(min_block, n // max(1, n // min_block))


def test_singular_factor_and_bad_shape_are_named():
    c = np.eye(4)
    c[2, 2] = 0.0
    with pytest.raises(np.linalg.LinAlgError, match="singular at row 2"):
        Cholesky(c, False)
    with pytest.raises(ValueError, match="square"):
        Cholesky(np.ones((3, 4)), False)
    with pytest.raises(ValueError, match="do not fit"):
        Cholesky.from_packed(Cholesky(np.eye(4), False, 2).packed, 5, 2)


def test_float32_factor_solves_in_float32_near_float64():
    """A float32 factor keeps float32 panels (half the bytes) and solves in float32, within
    ~cond(G) float32 rounding of the float64 solve; packed panels of another type are refused."""
    G = spd(700, seed=3) + 1e-2 * np.eye(700)  # condition number ~100, as the shipped fit's
    b = np.random.default_rng(4).normal(size=(700, 2))
    f64 = Cholesky(*scipy.linalg.cho_factor(G), min_block=256)
    f32 = Cholesky(*scipy.linalg.cho_factor(G.astype(np.float32)), min_block=256)
    assert f32.packed.dtype == np.float32 and f32.packed.nbytes * 2 == f64.packed.nbytes
    x32, x = f32.solve(b), f64.solve(b)
    assert x32.dtype == np.float32
    assert 0 < np.abs(x32 - x).max() < 1e-4 * np.abs(x).max()
    assert np.allclose(f32.R, f64.R, atol=1e-5 * np.abs(f64.R).max())
    again = Cholesky.from_packed(f32.packed.copy(), 700, 256)
    assert np.array_equal(again.solve(b), x32)
    with pytest.raises(ValueError, match="type int64 do not fit"):
        Cholesky.from_packed(f32.packed.astype(np.int64), 700, 256)
