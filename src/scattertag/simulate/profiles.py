"""Radial (q) and angular (chi) shapes of the scattering terms.

Every function is pure numpy on 1-D grids: the simulator evaluates them on a fine grid of
radii or azimuths once per image and looks the result up through per-experiment index
maps, never on the full frame. q in 1/A, lengths in A, angles in radians.
"""

from __future__ import annotations

import numpy as np


def power_law(q: np.ndarray, exponent: float, q_ref: float, q_cut: float) -> np.ndarray:
    """Power law ((q^2 + q_cut^2) / q_ref^2)^(-p/2): 1 at q_ref, finite at q = 0."""
    return ((q * q + q_cut * q_cut) / (q_ref * q_ref)) ** (-0.5 * exponent)


def ornstein_zernike(q: np.ndarray, xi: float) -> np.ndarray:
    """Ornstein-Zernike Lorentzian 1 / (1 + q^2 xi^2), correlation length xi."""
    return 1.0 / (1.0 + (q * xi) ** 2)


def debye_bueche(q: np.ndarray, a: float) -> np.ndarray:
    """Debye-Bueche 1 / (1 + q^2 a^2)^2 of a random two-phase medium, correlation length a."""
    return 1.0 / (1.0 + (q * a) ** 2) ** 2


def guinier(q: np.ndarray, rg: float) -> np.ndarray:
    """Guinier exp(-q^2 Rg^2 / 3), radius of gyration Rg."""
    return np.exp(-((q * rg) ** 2) / 3.0)


def high_q_rise(q: np.ndarray, sigma: float) -> np.ndarray:
    """Diffuse high-q scattering 1 - exp(-sigma^2 q^2), rising toward high q."""
    return -np.expm1(-((q * sigma) ** 2))


def gaussian_peak(q: np.ndarray, q0: float, sigma_q: float) -> np.ndarray:
    """Gaussian exp(-(q - q0)^2 / (2 sigma_q^2)), peak 1 at q0."""
    return np.exp(-0.5 * ((q - q0) / sigma_q) ** 2)


def debye_waller(q: np.ndarray, sigma: float) -> np.ndarray:
    """Debye-Waller damping exp(-sigma^2 q^2) of disorder sigma (A)."""
    return np.exp(-((q * sigma) ** 2))


def sphere_form_factor(q: np.ndarray, radius: float) -> np.ndarray:
    """|F(qR)|^2 of a uniform sphere, F(x) = 3 (sin x - x cos x) / x^3; 1 at q = 0."""
    x = np.maximum(np.asarray(q, dtype=np.float64) * radius, 1e-6)
    f = 3.0 * (np.sin(x) - x * np.cos(x)) / x**3
    return f * f


def nfold(chi: np.ndarray, order: int, eta: float, chi0: float) -> np.ndarray:
    """n-fold angular profile (1 - eta^2) / ((1 + eta)^2 - 4 eta cos^2(n (chi - chi0) / 2)).

    Maxima (1 + eta) / (1 - eta) at chi = chi0 + 2 pi m / n; mean over chi is 1.
    """
    c = np.cos(0.5 * order * (chi - chi0))
    return (1.0 - eta * eta) / ((1.0 + eta) ** 2 - 4.0 * eta * c * c)


def grains(chi: np.ndarray, centers: np.ndarray, weights: np.ndarray, width: float) -> np.ndarray:
    """Sum of periodic Gaussian grains in chi, normalised to mean 1 over the circle.

    ``centers`` (rad), ``weights`` (N,) and angular ``width`` (rad) describe the grains
    lit by the beam; few, narrow grains make a spotty ring, many a textured one.
    """
    d = np.angle(np.exp(1j * (chi[:, None] - centers[None, :])))  # wrapped to (-pi, pi]
    profile = (np.exp(-0.5 * (d / width) ** 2) * weights[None, :]).sum(axis=1)
    return profile / max(profile.mean(), 1e-300)


def grains_on_grid(n: int, centers: np.ndarray, weights: np.ndarray, width: float) -> np.ndarray:
    """:func:`grains` on the grid chi_j = -pi + (j + 1/2) 2 pi / n, in O(n log n).

    The grains are binned (linear interpolation between the two nearest nodes) and the
    bins convolved with the periodic Gaussian by FFT; equal to :func:`grains` to within
    the interpolation (widths above a bin: 2 pi / n).
    """
    position = (np.asarray(centers) + np.pi) / (2 * np.pi) * n - 0.5
    low = np.floor(position).astype(np.int64)
    frac = position - low
    hist = np.bincount(low % n, weights * (1 - frac), minlength=n)
    hist += np.bincount((low + 1) % n, weights * frac, minlength=n)
    offset = np.minimum(np.arange(n), n - np.arange(n)) * (2 * np.pi / n)
    kernel = np.exp(-0.5 * (offset / width) ** 2)
    profile = np.fft.irfft(np.fft.rfft(hist) * np.fft.rfft(kernel), n)
    profile = np.clip(profile, 0.0, None)
    return profile / max(profile.mean(), 1e-300)


def ellipse_stretch(chi: np.ndarray, aspect: float, chi0: float) -> np.ndarray:
    """Scale g(chi) of q for an anisotropic (elliptical) term: q_eff = q g(chi).

    g = sqrt(aspect cos^2(chi - chi0) + sin^2(chi - chi0) / aspect): iso-intensity lines
    are ellipses elongated along chi0 + pi/2 when aspect > 1.
    """
    c, s = np.cos(chi - chi0), np.sin(chi - chi0)
    return np.sqrt(aspect * c * c + s * s / aspect)
