"""Fourier-Bessel expansion of detector images on a disk about the beam centre.

On a disk of radius R about the beam centre (cx, cy), with r, theta the polar
coordinates of a pixel centre (theta = atan2(y - cy, x - cx), x along columns),

    psi_nk(r, theta) = exp(i n theta) J_n(j_nk r / R) / (sqrt(pi) R |J_{n+1}(j_nk)|),

n = 0..N, k = 1..K, j_nk the k-th positive zero of J_n. The basis is orthonormal on the
disk and the coefficient of an image f is a_nk = sum over disk pixels of f conj(psi_nk)
(pixel area 1). A real image needs only n >= 0: f = Re sum_k a_0k psi_0k
+ 2 Re sum_{n>=1,k} a_nk psi_nk.

How it is computed fast (set up once per geometry, applied to a batch):

1. Each basis function is replaced by its L2 (Galerkin) projection onto tensor
   B-splines on a polar grid (r_j = j dr, theta_m = m dtheta). The grid is as coarse as
   accuracy allows (``step`` radians of phase per node along r and theta), so it is
   small (~150 x 200 nodes for N = K = 32 and cubics) whatever the frame size.
2. A sparse pixel-to-polar operator S spreads the image onto the grid; an FFT over
   theta gives the angular orders; a small dense radial matrix per order (the
   projected Bessel profiles) gives the coefficients. Because the projection error of
   the basis is orthogonal to the spline space, the coefficients are accurate to
   second order in it (~1e-4 relative).
3. Two spline spaces (:class:`PolarSplines`). Cubic B-splines (16 weights a disk pixel)
   also approximate the basis pointwise to ~1e-4, so they serve ``reconstruct`` and the
   ``fit`` below. "project" needs only the second-order Galerkin accuracy, which linear
   B-splines (4 weights a pixel, ~2x faster) reach on a grid of ``LINEAR_STEP`` radians;
   they are used when that grid is coarser than the pixels (large disks, e.g. R >= 290
   for N = K = 32), and the cubic operator otherwise.

Missing data (mask, disk leaving the frame, non-finite pixels): ``method="fit"`` solves
the regularised least-squares problem

    minimise  sum over observed disk pixels (f - sum a psi)^2  +  reg * ||a||^2,

with ||a||^2 = sum_{n=-N..N} |a_nk|^2 the image energy on the whole disk (Parseval).
``reg`` is a threshold on observed energy: combinations of basis functions of which
less than a fraction ~reg of the energy falls on observed pixels are damped to zero
instead of being extrapolated. The normal equations (A^T M A + reg) u = A^T M f are
applied on the polar grid through the sparse polar Gram matrix S M S^T, and solved by
Cholesky (assembled once per mask and cached; each frame's triangular solves are BLAS
products, :mod:`scattertag.features.cholesky`, so preparing threads do not take turns on
the GIL) when there are at most ``dense_limit`` unknowns, else by conjugate gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cached_property, lru_cache
from typing import cast

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from numpy.polynomial.legendre import leggauss
from scipy import ndimage
from scipy.interpolate import CubicSpline
from scipy.special import jn_zeros, jv

from scattertag.cache import BoundedCache
from scattertag.features.cholesky import Cholesky
from scattertag.io.masks import mask_digest

#: Phase step of the linear B-spline grid used by "project": ~2e-4 where it is used (see below).
LINEAR_STEP = 0.6
#: Linear B-splines are used once each radial cell of their grid spans this many pixels; on
#: finer grids the pixel sum no longer integrates their products accurately (aliasing).
LINEAR_MIN_PIXELS = 1.25

#: Most observed pixels for which the fit's normal matrix is assembled pixel by pixel on the
#: polar grid (~2 us a pixel); beyond, applying the operator to unit vectors (~1.5 s at
#: (2N+1)K ~ 2000, whatever the pixel count) is cheaper (benchmarks/bench_throughput.py).
PIXEL_ASSEMBLY_LIMIT = 500_000

#: Eigenvalues of U U^T (U: the fit's rows at a frame's small holes) below this times the
#: largest are dropped from the low-rank correction: they change A^T M A by less than ~1e-12
#: of its norm, far below the float32 assembly of the normal matrix (~1e-7).
LOW_RANK_TOL = 1e-12

#: Smallest regularisation of the fit whose Cholesky factor is computed and solved in float32
#: (the shipped views' 1e-2): A^T M A + reg I has eigenvalues in [reg, ~1 + reg], so a
#: condition number below ~100, and float32 rounding moves the solution by ~1e-5 of its
#: largest coefficient (~9e-5 at reg = 1e-3: float64 below this).
FLOAT32_REG = 1e-2

#: Gram symbol of B-splines of degree d: values of the degree-(2d+1) B-spline at offsets 0..d.
_GRAM = {1: np.array([4.0, 1.0]) / 6.0, 3: np.array([2416.0, 1191.0, 120.0, 1.0]) / 5040.0}


@lru_cache(maxsize=16)
def bessel_zeros(orders: int, zeros: int) -> np.ndarray:
    """(orders + 1, zeros) array of j_nk, the k-th positive zero of J_n, n = 0..orders."""
    return np.array([jn_zeros(n, zeros) for n in range(orders + 1)])


def basis_norm(j: np.ndarray, radius: float) -> np.ndarray:
    """(N+1, K) normalisation 1 / (sqrt(pi) R |J_{n+1}(j_nk)|): psi_nk orthonormal on the disk."""
    n = np.arange(j.shape[0])[:, None]
    return 1.0 / (np.sqrt(np.pi) * radius * np.abs(jv(n + 1, j)))


def bernstein(t: np.ndarray, degree: int) -> np.ndarray:
    """(degree + 1, len(t)) Bernstein polynomials C(degree, l) t^l (1 - t)^(degree - l) at t
    (float32 for float32 t, else float64)."""
    t = np.asarray(t, np.float32 if np.asarray(t).dtype == np.float32 else np.float64)
    up, down = np.ones((degree + 1, len(t)), t.dtype), np.ones((degree + 1, len(t)), t.dtype)
    for i in range(1, degree + 1):  # powers by products: ~10x faster than float powers
        np.multiply(up[i - 1], t, out=up[i])
        np.multiply(down[i - 1], 1 - t, out=down[i])
    up *= np.array([math.comb(degree, i) for i in range(degree + 1)], t.dtype)[:, None]
    up *= down[::-1]
    return up


def bspline(x: np.ndarray, degree: int) -> np.ndarray:
    """Centred B-spline beta_d(x) of degree 1 (support |x| < 1) or 3 (support |x| < 2)."""
    x = np.abs(x)
    if degree == 1:
        return np.maximum(0.0, 1.0 - x)
    return np.where(x < 1, 2 / 3 - x**2 + x**3 / 2, np.where(x < 2, (2 - x) ** 3 / 6, 0.0))


def bspline_weights(u: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights of grid coordinate u on the d + 1 B-splines it touches.

    Returns (first node, weights (..., d + 1)).
    """
    base = np.floor(u)
    t = u - base
    if degree == 1:
        return base.astype(np.int64), np.stack([1 - t, t], -1)
    w = (
        np.stack(
            [(1 - t) ** 3, 3 * t**3 - 6 * t**2 + 4, -3 * t**3 + 3 * t**2 + 3 * t + 1, t**3], -1
        )
        / 6
    )
    return base.astype(np.int64) - 1, w


def bessel_profiles(orders: int, zeros: int, rho: np.ndarray) -> np.ndarray:
    """(N+1, len(rho), K) values J_n(j_nk rho) / |J_{n+1}(j_nk)| for rho in [0, 1].

    J_n is tabulated at steps of 0.02 in its argument and interpolated by cubic splines
    (error ~1e-9): ~10x fewer Bessel evaluations than direct calls.
    """
    j = bessel_zeros(orders, zeros)
    z = np.linspace(0.0, j.max(), int(np.ceil(j.max() / 0.02)) + 1)
    return np.stack(
        [
            CubicSpline(z, jv(n, z))(np.outer(rho, j[n])) / np.abs(jv(n + 1, j[n]))
            for n in range(orders + 1)
        ]
    )


@lru_cache(maxsize=16)
def radial_profiles(orders: int, zeros: int, cells: int, degree: int) -> np.ndarray:
    """(N+1, K, nodes) B-spline coefficients of the L2 projection of J_n(j_nk rho) / |J_{n+1}|.

    |J_{n+1}| stands for |J_{n+1}(j_nk)|. Unit disk (rho = r / R in [0, 1), measure
    rho d rho), nodes rho_j = j / cells for the B-splines of ``degree`` touching [0, 1);
    the coefficients for radius R are these times 1 / (sqrt(pi) R).
    """
    nodes = np.arange(-(degree // 2), cells + degree // 2 + 1)
    xg, wg = leggauss(4)  # 4 Gauss points a cell: exact for the spline products (degree <= 7)
    rho = (np.arange(cells)[:, None] + 0.5 + xg[None] / 2).ravel() / cells
    w = np.tile(wg, cells) / (2 * cells) * rho
    B = bspline(rho[:, None] * cells - nodes[None], degree)  # (Q, nodes)
    gram = scipy.linalg.cho_factor(B.T @ (B * w[:, None]))
    rhs = np.matmul(B.T, bessel_profiles(orders, zeros, rho) * w[:, None])  # (N+1, nodes, K)
    return np.stack([scipy.linalg.cho_solve(gram, r).T for r in rhs])


def angular_gain(orders: int, dtheta: float, degree: int) -> np.ndarray:
    """(N+1,) factor gamma_n of the angular B-spline projection P_V of exp(i n theta).

    P_V exp(i n theta) = gamma_n sum_m exp(i n theta_m) beta_d(theta / dtheta - m).
    """
    x = np.arange(orders + 1) * dtheta
    g = _GRAM[degree]
    symbol = g[0] + 2 * sum(g[s] * np.cos(s * x) for s in range(1, degree + 1))
    return np.sinc(x / (2 * np.pi)) ** (degree + 1) / symbol


class PolarSplines:
    """Tensor B-splines of degree 1 or 3 on a polar grid, and the sparse pixel-to-grid operator S.

    The grid (r_j = j dr, theta_m = m dtheta) advances the fastest basis function by
    ``step`` radians of phase per node along r and theta; it is small (~150 x 200 nodes for
    N = K = 32 and cubics at step 1) whatever the frame size.

    ``S`` (nodes * n_theta, H * W) holds, by column, the (d+1)^2 B-spline weights of each
    disk pixel (float32 weights, int32 rows): S @ image scatters into the small polar grid,
    which stays in cache. ``hankel`` (N+1, K, nodes) holds the projected radial profiles
    times the angular gain, so that a = hankel . FFT_theta(S f).
    """

    def __init__(
        self,
        fb: FourierBessel,
        r: np.ndarray | None,
        theta: np.ndarray | None,
        degree: int,
        step: float,
        arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        hankel: np.ndarray | None = None,
    ) -> None:
        cells = max(4, int(np.ceil(fb.j.max() / step)))
        self.degree = degree
        self.dr = fb.radius / cells
        self.n_theta = max(8, 2 * int(np.ceil(np.pi * max(fb.orders, 1) / step)))
        self.dtheta = 2 * np.pi / self.n_theta
        self.nodes = np.arange(-(degree // 2), cells + degree // 2 + 1)  # B-splines touching [0, R)
        self.orders = fb.orders
        if arrays is None:
            assert r is not None and theta is not None, "pixel radii and angles, or arrays"
            self.S = self._spread_matrix(fb, r, theta)
        else:  # (data, indices, indptr) of S from a cached state
            self.S = sp.csc_matrix(
                arrays, shape=(len(self.nodes) * self.n_theta, fb.shape[0] * fb.shape[1])
            )
        if hankel is None:  # ~0.6 s of Bessel functions the first time in a process
            gain = angular_gain(fb.orders, self.dtheta, degree)
            prof = radial_profiles(fb.orders, fb.zeros, cells, degree) / (
                np.sqrt(np.pi) * fb.radius
            )
            hankel = (prof * gain[:, None, None]).astype(np.float32)
        self.hankel = hankel  # (N+1, K, nodes) float32

    def weights(
        self, r: np.ndarray, theta: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Grid weights of pixels at (r, theta): first radial node (from nodes[0]), (P, d+1)
        radial weights, first angular node, (P, d+1) angular weights (float32)."""
        jr, wr = bspline_weights(r / self.dr, self.degree)
        jt, wt = bspline_weights(theta / self.dtheta, self.degree)
        jr = (jr - self.nodes[0]).astype(np.int32)
        return jr, wr.astype(np.float32), jt.astype(np.int32), wt.astype(np.float32)

    def _spread_matrix(self, fb: FourierBessel, r: np.ndarray, theta: np.ndarray) -> sp.csc_matrix:
        """(nodes * n_theta, H * W) sparse: pixel -> its (d+1) x (d+1) polar B-spline weights."""
        m = self.degree + 1
        jr, wr, jt, wt = self.weights(r, theta)
        steps = np.arange(m, dtype=np.int32)
        rows = (jr[:, None, None] + steps[:, None]) * self.n_theta + (
            jt[:, None, None] + steps
        ) % self.n_theta
        vals = wr[:, :, None] * wt[:, None, :]
        indptr = np.zeros(fb.shape[0] * fb.shape[1] + 1, dtype=np.int64)
        indptr[fb.pixels + 1] = m * m
        shape = (len(self.nodes) * self.n_theta, fb.shape[0] * fb.shape[1])
        return sp.csc_matrix((vals.reshape(-1), rows.reshape(-1), np.cumsum(indptr)), shape=shape)

    @cached_property
    def _angular_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """(N+1, n_theta) complex64 c_n exp(-i n theta_m) (c_0 = 1, c_n = sqrt(2)): the packed
        angular modes at the nodes, phi_n = Re, phi_{N+n} = Im; and (N+1, d+1) complex64
        exp(-i n b dtheta), the step to the b-th node after a pixel's first."""
        n = np.arange(self.orders + 1)[:, None]
        scale = np.where(n > 0, np.sqrt(2.0), 1.0)
        nodes = scale * np.exp(-1j * self.dtheta * n * np.arange(self.n_theta))
        steps = np.exp(-1j * self.dtheta * n * np.arange(self.degree + 1))
        return nodes.astype(np.complex64), steps.astype(np.complex64)

    def angular_columns(self, theta: np.ndarray) -> np.ndarray:
        """(2N+1, P) float32 psi_qp = sum_b wt_pb phi_q(theta_{m_p + b}): the packed angular
        modes (q = 0: 1; q = n: sqrt(2) cos n theta; q = N + n: -sqrt(2) sin n theta)
        projected on the angular B-splines, at pixel angles ``theta``.

        As exp(-i n theta_{m+b}) = exp(-i n theta_m) exp(-i n b dtheta), a pixel's modes are
        one (d+1)-wide product and one complex product, with pixels along rows.
        """
        jt, wt = bspline_weights(theta / self.dtheta, self.degree)
        nodes, steps = self._angular_nodes
        z = np.take(nodes, jt % self.n_theta, axis=1)  # (N+1, P)
        z *= steps @ wt.T.astype(np.complex64)
        psi = np.empty((2 * self.orders + 1, len(theta)), np.float32)
        psi[: self.orders + 1] = z.real
        psi[self.orders + 1 :] = z.imag[1:]
        return psi

    @cached_property
    def radial_modes(self) -> np.ndarray:
        """(nodes, 2N+1, K) float32 radial profile hankel[n(q), k, j] of packed unknown (q, k)."""
        n_of_q = np.concatenate([np.arange(self.orders + 1), np.arange(1, self.orders + 1)])
        return np.ascontiguousarray(self.hankel[n_of_q].transpose(2, 0, 1))

    def pixel_rows(self, r: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """(P, (2N+1) K) rows of A: the packed (spline-projected) basis at pixels (r, theta)."""
        jr, wr, _, _ = self.weights(r, theta)
        radial = self.radial_modes
        prof = sum(wr[:, a, None, None] * radial[jr + a] for a in range(self.degree + 1))
        return (self.angular_columns(theta).T[:, :, None] * prof).reshape(len(r), -1)

    @cached_property
    def _band_coupling(self) -> np.ndarray:
        """((d+1) (2d+1), 2d+1) float32 C[(a, s), l]: the product of the radial B-spline
        weights a and a' = a + s - d of a pixel at fraction t of its cell is sum_l C[(a, s), l]
        b_l(t), b_l the Bernstein polynomials of degree 2d (0 where a' is no weight).

        On [0, 1) each weight is a cubic (linear) with Bernstein coefficients beta[a, i] >= 0,
        and b_i b_i' = C(d, i) C(d, i') / C(2d, i + i') b_{i+i'} of degree 2d: every term is
        positive, so moments of b_l lose no accuracy to cancellation.
        """
        d = self.degree
        t = (np.arange(d + 1) + 0.5) / (d + 1)
        _, w = bspline_weights(t, d)  # (points, weights)
        beta = np.linalg.solve(bernstein(t, d).T, w).T  # (a, i)
        C = np.zeros((d + 1, 2 * d + 1, 2 * d + 1))
        for a, s in np.ndindex(d + 1, 2 * d + 1):
            if 0 <= a + s - d <= d:
                for i, i2 in np.ndindex(d + 1, d + 1):
                    scale = math.comb(d, i) * math.comb(d, i2) / math.comb(2 * d, i + i2)
                    C[a, s, i + i2] += beta[a, i] * beta[a + s - d, i2] * scale
        return C.reshape(-1, 2 * d + 1).astype(np.float32)

    def normal_matrix(self, r: np.ndarray, theta: np.ndarray, full: bool = True) -> np.ndarray:
        """(n, n) float32 A^T A over the pixels at (r, theta): the normal matrix of the fit.

        A = S^T Syn with Syn the packed synthesis: its (q, k) column is hankel[n(q), k]
        (radial nodes) times phi_q (angular nodes). Contracting angles per pixel first
        (psi_p, :meth:`angular_columns`), the polar Gram in the angular modes,
        T[(j, q), (j', q')] = sum_p wr_pa wr_pa' psi_pq psi_pq' (j = j_p + a, j' = j_p + a'),
        is block-banded (|j - j'| <= d) and small; then A^T A = Hankel^T T Hankel.

        wr_pa wr_pa' is a polynomial of degree 2d in the pixel's radial fraction t_p, so T
        needs, per radial cell j, the 2d + 1 moments M_jl = sum_p b_l(t_p) psi_p psi_p^T
        (:meth:`_band_coupling`): ~P (2d+1) (2N+1)^2 flops. Each band T[(j, .), (j + s - d,
        .)] is symmetric in (q, q'); then A^T A block by block,
        G_qq' = sum_j R[j, q]^T sum_s T[(j, q), (j + s - d, q')] R[j + s - d, q'] (R the
        radial modes), ~nodes (2N+1)^2 K (2d+1 + K) flops. With ``full=False`` only the
        blocks q' >= q are filled (the upper triangle suffices for Cholesky), at about half
        the cost, with the numbers of ``full=True`` up to float32 rounding (the BLAS may
        round products of other shapes differently, by ~1e-7).
        """
        d, Q, K, J = self.degree, 2 * self.orders + 1, self.hankel.shape[1], len(self.nodes)
        S = 2 * d + 1
        u = r / self.dr
        cell = np.floor(u).astype(np.int64)  # first radial node of the pixel, from nodes[0]
        order = np.argsort(cell.astype(np.int16) if J < 2**15 else cell, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(cell, minlength=J))])
        psi = self.angular_columns(np.take(theta, order))  # (Q, P), by radial cell
        fraction = (np.take(u, order) - np.take(cell, order)).astype(np.float32)
        moments = bernstein(fraction, 2 * d)  # (S, P) float32
        coupling = self._band_coupling
        band = np.zeros((J + d, S, Q, Q), np.float32)  # band[j, s] = T[(j, .), (j + s - d, .)]
        for j in np.flatnonzero(starts[1:] > starts[:-1]):
            cut = slice(starts[j], starts[j + 1])
            p = psi[:, cut]
            weighted = moments[:, None, cut] * p  # (S, Q, pixels): pixels along rows
            M = (weighted.reshape(S * Q, -1) @ p.T).reshape(S, Q * Q)  # (l, q, q')
            band[j : j + d + 1] += (coupling @ M).reshape(d + 1, S, Q, Q)
        band = band[:J]
        pad = np.zeros((d, Q, K), np.float32)
        radial = np.concatenate([pad, self.radial_modes, pad])  # radial[j + d] = R[j]
        left = np.ascontiguousarray(radial[d : d + J].transpose(1, 2, 0))  # (Q, K, J)
        G = np.zeros((Q, K, Q, K), np.float32)
        step, unit = radial.strides[0], radial.strides[2]
        for q2 in range(Q):
            top = Q if full else q2 + 1
            # shifted[j, s] = R[j + s - d, q2]; Y[j, q] = sum_s T[(j, q), (j + s - d, q2)]
            # shifted[j, s] (T symmetric in q, q2 at each (j, s))
            shifted = np.lib.stride_tricks.as_strided(radial[:, q2], (J, S, K), (step, step, unit))
            Y = np.matmul(band[:, :, q2, :top].transpose(0, 2, 1), shifted)  # (J, top, K)
            # the sum over radial nodes cancels: float32 sums of 64 nodes at most (~3e-7 of
            # the largest entry; ~7e-7 in one product over all nodes, ~1e-7 in float64)
            for lo in range(0, J, 64):
                cut = slice(lo, lo + 64)
                G[:top, :, q2] += np.matmul(left[:top, :, cut], Y[cut].transpose(1, 0, 2))
        return G.reshape(Q * K, Q * K)

    @property
    def nbytes(self) -> int:
        """Memory held by the sparse pixel-to-polar operator."""
        return self.S.data.nbytes + self.S.indices.nbytes + self.S.indptr.nbytes

    @cached_property
    def hankel_t(self) -> np.ndarray:
        """(N+1, nodes, K) float32 ``hankel`` transposed, for :meth:`synthesise` (made when
        first asked: tagging never synthesises, and a copy costs a warm set-up ~1 ms)."""
        return np.ascontiguousarray(self.hankel.transpose(0, 2, 1))

    def analyse(self, x: np.ndarray) -> np.ndarray:
        """(nodes * n_theta, B) polar values -> (B, N+1, K) complex coefficients."""
        B = x.shape[1]
        F = np.fft.rfft(x.T.reshape(B, len(self.nodes), self.n_theta), axis=2)[
            :, :, : self.orders + 1
        ]
        F = np.ascontiguousarray(F.transpose(2, 1, 0)).astype(np.complex64)  # (N+1, nodes, B)
        a = np.matmul(self.hankel, F.view(np.float32)).view(np.complex64)  # (N+1, K, B)
        return a.transpose(2, 0, 1).astype(np.complex128)

    def synthesise(self, a: np.ndarray) -> np.ndarray:
        """(B, N+1, K) complex coefficients -> (nodes * n_theta, B) polar values (Re a_0 used)."""
        B = a.shape[0]
        A = np.ascontiguousarray(a.transpose(1, 2, 0)).astype(np.complex64)  # (N+1, K, B)
        G = np.matmul(self.hankel_t, A.view(np.float32)).view(np.complex64)  # (N+1, nodes, B)
        spec = np.zeros((B, len(self.nodes), self.n_theta // 2 + 1), np.complex64)
        spec[:, :, : self.orders + 1] = G.transpose(2, 1, 0)
        x = (
            np.fft.irfft(spec, self.n_theta, axis=2) * self.n_theta
        )  # Re G_0 + 2 Re sum G_n e^{i n theta}
        return np.ascontiguousarray(x.reshape(B, -1).T, dtype=np.float32)


class FourierBessel:
    """Fourier-Bessel transform of (H, W) frames on the disk of ``radius`` about ``center``.

    Parameters
    ----------
    shape : (H, W) frame shape.
    center : (cx, cy) beam centre in pixels (x = column); may lie off the frame.
    radius : disk radius R in pixels.
    orders, zeros : N and K: orders n = 0..N, zeros k = 1..K.
    step : phase (radians) of the fastest basis function per node of the cubic grid;
        1.0 gives ~1e-4.
    dense_limit : largest number of real unknowns (2N+1)K solved by cached Cholesky in ``fit``.
    low_rank_limit : most disk pixels of small holes (hot pixels, zinger patches, NaN
        blocks) that the fit solves by a Woodbury correction of the factor of the mask
        without them, instead of a factor of its own.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        center: tuple[float, float],
        radius: float,
        orders: int,
        zeros: int,
        step: float = 1.0,
        dense_limit: int = 2500,
        low_rank_limit: int = 256,
        state: dict[str, np.ndarray] | None = None,
    ) -> None:
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"shape must be (H, W) with positive sizes, got {shape}")
        if not (np.isfinite(radius) and radius > 0):
            raise ValueError(f"radius must be a positive number of pixels, got {radius}")
        if not (0 <= orders <= 500 and 1 <= zeros <= 500):
            raise ValueError(
                f"orders must be in [0, 500] and zeros in [1, 500], got {orders}, {zeros}"
            )
        if not (0.05 <= step <= 2.0):
            raise ValueError(f"step must be in [0.05, 2] radians, got {step}")
        self.shape = (int(shape[0]), int(shape[1]))
        self.center = (float(center[0]), float(center[1]))
        self.radius, self.orders, self.zeros = float(radius), int(orders), int(zeros)
        self.dense_limit, self.low_rank_limit = int(dense_limit), int(low_rank_limit)
        self.j = bessel_zeros(orders, zeros)
        # Cholesky factors of the fit, by (mask digest, reg)
        self._gram_cache: BoundedCache[Cholesky] = BoundedCache(4)
        # Woodbury corrections (:meth:`_correction`) of masks with holes, by (mask, base, reg)
        self._corrections: BoundedCache[np.ndarray] = BoundedCache(8)
        # linear B-splines (4 weights a pixel instead of 16) once their finer grid is coarser
        # than the pixels
        fine = self.radius * LINEAR_STEP / self.j.max() >= LINEAR_MIN_PIXELS
        if state is not None:
            self._restore(state, step, fine)
            return
        self.pixels, r, theta = self._disk_pixels()
        if self.pixels.size == 0:
            raise ValueError(
                f"disk of radius {radius:g} about {self.center} covers no pixel of the "
                f"{self.shape} frame"
            )
        self.exact = PolarSplines(self, r, theta, degree=3, step=step)
        self.fast = PolarSplines(self, r, theta, degree=1, step=LINEAR_STEP) if fine else self.exact

    # ---- geometry ----------------------------------------------------------------------
    def _disk_pixels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat indices, radii, angles in [0, 2 pi) of the frame pixels centred in the disk."""
        H, W = self.shape
        cx, cy = self.center
        R = self.radius
        rows = np.arange(max(0, int(np.floor(cy - R))), min(H, int(np.ceil(cy + R)) + 1))
        cols = np.arange(max(0, int(np.floor(cx - R))), min(W, int(np.ceil(cx + R)) + 1))
        dy, dx = np.meshgrid(rows - cy, cols - cx, indexing="ij")
        r = np.hypot(dx, dy)
        inside = r < R
        flat = (rows[:, None] * W + cols[None, :])[inside]
        theta = np.arctan2(dy[inside], dx[inside]) % (2 * np.pi)
        return flat, r[inside], theta

    @property
    def disk_in_frame(self) -> bool:
        """True if every pixel centre of the disk lies on the frame."""
        H, W = self.shape
        cx, cy = self.center
        R = self.radius
        return cx - R >= -0.5 and cy - R >= -0.5 and cx + R <= W - 0.5 and cy + R <= H - 0.5

    def state(self) -> dict[str, np.ndarray]:
        """The arrays that set this operator up again (``FourierBessel(..., state=...)``):
        disk pixels, spread operators and the Cholesky factors of the fit held now (their
        packed panels)."""
        out = {"pixels": self.pixels}
        for name, polar in (("exact", self.exact), ("fast", self.fast)):
            if name == "exact" or polar is not self.exact:
                S = polar.S
                out.update({f"{name}.data": S.data, f"{name}.indices": S.indices})
                out.update({f"{name}.indptr": S.indptr, f"{name}.hankel": polar.hankel})
        for i, (key, factor) in enumerate(self._gram_cache.items()):
            digest, reg = cast(tuple[str, float], key)  # keys are (mask digest, reg)
            out[f"factor{i}.key"] = np.frombuffer(digest.encode(), np.uint8)
            out[f"factor{i}.reg_size"] = np.array([reg, factor.n, factor.min_block], np.float64)
            out[f"factor{i}"] = factor.packed  # the panels its solves read
        return out

    def _restore(self, state: dict[str, np.ndarray], step: float, fine: bool) -> None:
        """Set up from :meth:`state` arrays instead of computing them."""
        self.pixels = state["pixels"]

        def polar(name: str, degree: int, step: float) -> PolarSplines:
            arrays = (state[f"{name}.data"], state[f"{name}.indices"], state[f"{name}.indptr"])
            return PolarSplines(self, None, None, degree, step, arrays, state[f"{name}.hankel"])

        self.exact = polar("exact", 3, step)
        self.fast = polar("fast", 1, LINEAR_STEP) if fine else self.exact
        for i in range(sum(name.endswith(".key") for name in state)):
            reg, n, min_block = state[f"factor{i}.reg_size"]
            key = (state[f"factor{i}.key"].tobytes().decode(), float(reg))
            factor = Cholesky.from_packed(state[f"factor{i}"], int(n), int(min_block))
            self._gram_cache.put(key, factor)

    @property
    def norm(self) -> np.ndarray:
        """(N+1, K) normalisation of psi_nk (:func:`basis_norm`; computed when asked)."""
        return basis_norm(self.j, self.radius)

    @property
    def cached_factors(self) -> int:
        """Cholesky factors of the fit held for reuse (one per mask and reg)."""
        return len(self._gram_cache)

    @property
    def n_unknowns(self) -> int:
        """Real degrees of freedom (2N+1) K of a real image's expansion."""
        return (2 * self.orders + 1) * self.zeros

    @property
    def operator_bytes(self) -> int:
        """Memory held by the sparse pixel-to-polar operators."""
        return self.exact.nbytes + (self.fast.nbytes if self.fast is not self.exact else 0)

    # ---- public API --------------------------------------------------------------------
    def transform(
        self,
        images: np.ndarray,
        mask: np.ndarray | None = None,
        method: str | None = None,
        reg: float = 1e-3,
        tol: float = 1e-6,
        maxiter: int = 300,
        base: np.ndarray | None = None,
    ) -> np.ndarray:
        """(H, W) or (B, H, W) images -> complex (N+1, K) or (B, N+1, K) coefficients a_nk.

        ``mask`` (bool, True = valid; (H, W) or per image) and non-finite pixels mark
        missing data. ``method``: "project" (sum over observed pixels, missing ones count
        as zero) or "fit" (regularised least squares, see the module docstring); default
        "fit" when any disk pixel is missing, else "project". ``reg``, ``tol`` and
        ``maxiter`` (conjugate gradients) apply to "fit". ``base`` (H, W) bool: the mask
        every frame shares (the detector's gaps and beamstop); a frame that lacks at most
        ``low_rank_limit`` of its disk pixels, and no more, is fitted by a low-rank
        correction of its factor (:meth:`_dense_solve`).
        """
        images = np.asarray(images)
        single = images.ndim == 2
        stack = images[None] if single else images
        if stack.ndim != 3 or stack.shape[1:] != self.shape:
            raise ValueError(
                f"images must have shape {self.shape} or (B, *{self.shape}), got {images.shape}"
            )
        if method not in (None, "project", "fit"):
            raise ValueError(f"method must be 'project', 'fit' or None, got {method!r}")
        if not (0 <= reg <= 1e3):
            raise ValueError(f"reg must be in [0, 1e3], got {reg}")
        valid = self._valid(stack, mask)
        B = len(stack)
        if valid is None:  # everything observed: no copy, no checks
            x = stack.reshape(B, -1).astype(np.float32, copy=False)
            valid, seen = np.ones(stack.shape, bool), np.ones((B, 1), bool)
        else:
            x = np.where(valid, stack, 0).reshape(B, -1).astype(np.float32, copy=False)
            seen = valid.reshape(B, -1)[:, self.pixels]
        if not seen.any(axis=1).all():
            raise ValueError(
                f"an image has no observed pixel in the disk of radius {self.radius:g} about "
                f"{self.center}"
            )
        fit = {
            "project": np.zeros(B, bool),
            "fit": np.ones(B, bool),
            None: ~seen.all(axis=1) | (not self.disk_in_frame),
        }[method]
        a = np.empty((len(x), self.orders + 1, self.zeros), complex)
        if not fit.all():
            rows = x if not fit.any() else x[~fit]
            a[~fit] = self.fast.analyse(self.fast.S @ rows.T)
        if fit.any():
            a[fit] = self._fit(x[fit], valid[fit], reg, tol, maxiter, base)
        return a[0] if single else a

    def reconstruct(self, a: np.ndarray) -> np.ndarray:
        """Complex (N+1, K) or (B, N+1, K) coefficients -> real (H, W) or (B, H, W), 0 off disk."""
        a = np.asarray(a)
        single = a.ndim == 2
        stack = a[None] if single else a
        if stack.shape[1:] != (self.orders + 1, self.zeros):
            raise ValueError(
                f"coefficients must have shape {(self.orders + 1, self.zeros)} (or batched), got "
                f"{a.shape}"
            )
        f = (self.exact.S.T @ self.exact.synthesise(stack)).T.reshape(len(stack), *self.shape)
        return f[0] if single else f

    # ---- missing data ------------------------------------------------------------------
    def _valid(self, stack: np.ndarray, mask: np.ndarray | None) -> np.ndarray | None:
        """(B, H, W) bool: finite pixels where ``mask`` allows; None if that is every pixel."""
        finite = np.isfinite(stack) if stack.dtype.kind in "fc" else None
        if finite is not None and finite.all():
            finite = None
        if mask is None:
            return finite
        mask = np.asarray(mask, dtype=bool)
        if mask.shape not in (self.shape, stack.shape):
            raise ValueError(
                f"mask shape {mask.shape} matches neither the frame {self.shape} nor images "
                f"{stack.shape}"
            )
        return np.broadcast_to(mask, stack.shape) if finite is None else finite & mask

    def _pack(self, a: np.ndarray) -> np.ndarray:
        """(B, N+1, K) complex -> (B, (2N+1)K) real u with ||u|| = Parseval norm of a."""
        s = np.sqrt(2.0)
        return np.concatenate(
            [
                a[:, 0].real,
                s * a[:, 1:].real.reshape(len(a), -1),
                s * a[:, 1:].imag.reshape(len(a), -1),
            ],
            1,
        )

    def _unpack(self, u: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`_pack` (Im a_0 = 0)."""
        B, N, K = len(u), self.orders, self.zeros
        a = np.zeros((B, N + 1, K), complex)
        a[:, 0] = u[:, :K]
        a[:, 1:] = (u[:, K : K + N * K] + 1j * u[:, K + N * K :]).reshape(B, N, K) / np.sqrt(2.0)
        return a

    def _normal_operator(self, valid_flat: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """u (B, n) -> A^T M A u, with the polar Gram S M S^T of the observed pixels."""
        S, polar = self.exact.S, self.exact
        gram = (S @ sp.diags(valid_flat.astype(np.float32)) @ S.T).tocsr()
        return lambda u: self._pack(polar.analyse(gram @ polar.synthesise(self._unpack(u))))

    def _polar(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Radius and angle in [0, 2 pi) of the pixels with flat indices ``flat``."""
        y, x = np.divmod(flat, self.shape[1])
        dx, dy = x - self.center[0], y - self.center[1]
        return np.hypot(dx, dy), np.arctan2(dy, dx) % (2 * np.pi)

    def _fit(
        self,
        x: np.ndarray,
        valid: np.ndarray,
        reg: float,
        tol: float,
        maxiter: int,
        base: np.ndarray | None = None,
    ) -> np.ndarray:
        """Regularised least-squares coefficients of each image from its observed pixels."""
        flat = valid.reshape(len(valid), -1)
        same = (flat == flat[:1]).all()
        groups = [np.arange(len(x))] if same else [np.array([b]) for b in range(len(x))]
        out = np.empty((len(x), self.orders + 1, self.zeros), complex)
        for idx in groups:
            rhs = self._pack(self.exact.analyse(self.exact.S @ x[idx].T))
            if self.n_unknowns <= self.dense_limit:
                u = self._dense_solve(flat[idx[0]], reg, rhs.T, base).T
            else:
                u = conjugate_gradients(self._normal_operator(flat[idx[0]]), rhs, reg, tol, maxiter)
            out[idx] = self._unpack(u)
        return out

    def _dense_solve(
        self, valid_flat: np.ndarray, reg: float, rhs: np.ndarray, base: np.ndarray | None = None
    ) -> np.ndarray:
        """(n, B) solutions of (A^T M A + reg I) u = rhs for the mask ``valid_flat``.

        The mask's holes P (:meth:`_holes`: a hot pixel, a zinger patch, a NaN block of this
        frame) are solved with the Cholesky factor G0 = R^T R of the mask without them (the
        detector's gaps and beamstop, the same in every frame, so factorised once):
        A^T M A + reg I = G0 - V^T V, with V (r, n) the rows of A at P compressed to their
        numerical rank (:meth:`_correction`). With W = R^-T V^T and the Woodbury identity,
        u = R^-1 (z + W (I - W^T W)^-1 W^T z), z = R^-T rhs: one solve's work and small
        products a frame. Which factor and which correction depend on this mask and
        ``base`` alone, never on the masks seen before, so a frame's coefficients are the
        same in any process and order.
        """
        filled, holes = self._holes(valid_flat, base)
        factor = self._cholesky(filled, reg)
        if len(holes) == 0:
            return factor.solve(rhs)  # BLAS products: preparing threads run side by side
        key = (mask_digest(valid_flat), mask_digest(filled), reg)
        Y = self._corrections.get(key, lambda: self._correction(factor, holes))
        z = factor.whiten(rhs)
        return factor.back(z + Y @ (Y.T @ z))

    def _correction(self, factor: Cholesky, holes: np.ndarray) -> np.ndarray:
        """(n, r) Y with Y Y^T = W (I - W^T W)^-1 W^T, W = R^-T V^T (G0 = R^T R: ``factor``).

        U (d, n) are the rows of A at the ``holes`` (indices into ``pixels``); V = Q^T U
        keeps the eigenvectors Q of U U^T whose eigenvalues exceed ``LOW_RANK_TOL`` times the
        largest, so V^T V = U^T U to that tolerance with r <= d rows (a compact NaN block of
        100 pixels has r ~ 40): the triangular solve, the costly step, is r columns wide.
        I - W^T W = L L^T is positive definite (A^T M A + reg I is) and Y = W L^-T.
        """
        U = self.exact.pixel_rows(*self._polar(self.pixels[holes])).astype(np.float64)
        lam, Q = np.linalg.eigh(U @ U.T)  # ascending
        V = Q[:, lam > LOW_RANK_TOL * max(lam[-1], 1e-300)].T @ U
        W = factor.whiten(V.T)
        L = np.linalg.cholesky(np.eye(len(V)) - W.T @ W)
        return scipy.linalg.solve_triangular(L, W.T, lower=True, check_finite=False).T

    def _holes(
        self, valid_flat: np.ndarray, base: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(the mask to factorise, the indices into ``pixels`` of its holes to correct).

        When the mask lacks at most ``low_rank_limit`` disk pixels of ``base`` and has none
        that ``base`` lacks: ``base`` and those pixels (no labelling); else
        :meth:`_small_holes`.
        """
        if base is not None and self.low_rank_limit > 0:
            kept, seen = base.reshape(-1), valid_flat[self.pixels]
            inside = kept[self.pixels]
            lost = np.flatnonzero(inside > seen)
            if len(lost) <= self.low_rank_limit and not (seen > inside).any():
                return kept, lost
        return self._small_holes(valid_flat)

    def _small_holes(self, valid_flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the mask with its small holes filled, the holes' indices into ``pixels``).

        Holes are connected groups of unobserved disk pixels, taken smallest first while
        they add up to at most ``low_rank_limit`` pixels; the large ones (module gaps,
        beamstop, the frame's edge) stay in the mask.
        """
        seen = valid_flat[self.pixels]
        none = np.zeros(0, np.int64)
        if seen.all() or self.low_rank_limit == 0:
            return valid_flat, none
        hole = np.zeros(valid_flat.size, bool)
        hole[self.pixels[~seen]] = True
        labels, _ = ndimage.label(hole.reshape(self.shape))
        sizes = np.bincount(labels.ravel())[1:]
        order = np.argsort(sizes, kind="stable")
        small = order[np.cumsum(sizes[order]) <= self.low_rank_limit] + 1
        if len(small) == 0:
            return valid_flat, none
        filled = np.isin(labels.ravel(), small)
        return valid_flat | filled, np.flatnonzero(filled[self.pixels])

    def _cholesky(self, valid_flat: np.ndarray, reg: float) -> Cholesky:
        """Cholesky factor of A^T M A + reg I for this mask (assembled on polar grid, cached)."""

        def factorise() -> Cholesky:
            seen = valid_flat[self.pixels]
            if seen.sum() <= PIXEL_ASSEMBLY_LIMIT:
                G = self.exact.normal_matrix(*self._polar(self.pixels[seen]), full=False)
            else:  # a cost independent of the pixel count: the operator on unit vectors
                normal, n = self._normal_operator(valid_flat), self.n_unknowns
                G = np.concatenate([normal(np.eye(n)[i : i + 256]) for i in range(0, n, 256)])
            # reg bounds the condition number by ~(1 + reg) / reg: float32 (spotrf, half
            # dpotrf's time and bytes) from FLOAT32_REG on, rounding ~cond 6e-8 of the solution
            G = G.astype(np.float32 if reg >= FLOAT32_REG else np.float64, copy=False)
            G[np.diag_indices_from(G)] += G.dtype.type(reg)
            # G^T is G's upper triangle in Fortran order: LAPACK factorises it in place
            c, lower = scipy.linalg.cho_factor(
                G.T, lower=True, overwrite_a=True, check_finite=False
            )
            return Cholesky(c, lower)

        return self._gram_cache.get((mask_digest(valid_flat), float(reg)), factorise)


def conjugate_gradients(
    normal: Callable[[np.ndarray], np.ndarray],
    rhs: np.ndarray,
    reg: float,
    tol: float,
    maxiter: int,
) -> np.ndarray:
    """Solve (normal + reg I) u = rhs for right-hand sides rhs (B, n) by conjugate gradients.

    Stops when every residual norm is below ``tol`` times its start, or after ``maxiter`` steps.
    """
    u = np.zeros_like(rhs)
    r = rhs.copy()
    p = r.copy()
    rr = np.sum(r * r, 1)
    stop = tol**2 * np.maximum(rr, 1e-300)
    for _ in range(maxiter):
        if np.all(rr <= stop):
            break
        Ap = normal(p) + reg * p
        alpha = rr / np.maximum(np.sum(p * Ap, 1), 1e-300)
        u += alpha[:, None] * p
        r -= alpha[:, None] * Ap
        rr_new = np.sum(r * r, 1)
        p = r + (rr_new / np.maximum(rr, 1e-300))[:, None] * p
        rr = rr_new
    return u
