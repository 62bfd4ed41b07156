"""Point symmetry by FFT: the sums over the pairs (p, s - p) of an image for every s at once.

For an image g with validity m and G = g m, the sums over the valid pairs reflected
through c = s / 2 are convolutions: n(s) = (m * m)(s), S1 = (G * m)(s), S2 = (G^2 * m)(s),
S12 = (G * G)(s). From them the normalised correlation of g(p) and g(s - p) is
(S12 - S1^2 / n) / (S2 - S1^2 / n); its peak is the centre of point symmetry.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import next_fast_len


def fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (a fast FFT length)."""
    return int(next_fast_len(int(n), real=True))


def reflection_sums(
    g: np.ndarray, m: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(n, S1, S2, S12), each (2R - 1, 2C - 1), of g (R, C) over the pairs of valid pixels
    (weights m (R, C), 0 or 1) reflected through every centre c = s / 2 (module docstring)."""
    big = g * m
    rows, cols = m.shape
    shape = (2 * rows - 1, 2 * cols - 1)
    fshape = [fast_len(s) for s in shape]
    fm, fg, fg2 = (np.fft.rfft2(a, fshape) for a in (m, big, big * g))
    crop = (slice(0, shape[0]), slice(0, shape[1]))
    n = np.fft.irfft2(fm * fm, fshape)[crop]
    s1 = np.fft.irfft2(fg * fm, fshape)[crop]
    s2 = np.fft.irfft2(fg2 * fm, fshape)[crop]
    s12 = np.fft.irfft2(fg * fg, fshape)[crop]
    return n, s1, s2, s12


def parabola(a: np.ndarray, i: int, j: int, axis: int) -> float:
    """Sub-sample offset of the peak at (i, j) along ``axis`` from a 3-point parabola."""
    step = (1, 0) if axis == 0 else (0, 1)
    lo = (i - step[0], j - step[1])
    hi = (i + step[0], j + step[1])
    if min(lo) < 0 or hi[0] >= a.shape[0] or hi[1] >= a.shape[1]:
        return 0.0
    y0, y1, y2 = a[lo], a[i, j], a[hi]
    den = y0 - 2 * y1 + y2
    if not (np.isfinite(den) and den < 0):
        return 0.0
    return float(np.clip(0.5 * (y0 - y2) / den, -0.5, 0.5))
