"""Gaussian smoothing of levels and windows: ``scipy.ndimage.gaussian_filter``'s floats, with
its kernels kept.

``gaussian_filter`` rebuilds its 1-D kernel (an exp over 2 r + 1 points and its sum) and
normalises its arguments on every call, ~20 us of Python on top of the two passes; the
levels, the shadows' local means, the stops' edge windows and the compact windows smooth
~40 small arrays a frame with a handful of (sigma, radius) pairs. Here the kernel of each
pair is built once, by scipy's own function, and the passes are the same
``ndimage.correlate1d`` calls ``gaussian_filter`` makes (the same weights, axes, output
array and mode): the same floats.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

#: scipy's own kernel builder (private: where a scipy release drops it, :func:`gaussian`
#: calls ``gaussian_filter`` itself, the same floats without the kept kernels).
_BUILD_KERNEL: Any = None
try:
    from scipy.ndimage import _filters

    _BUILD_KERNEL = getattr(_filters, "_gaussian_kernel1d", None)
except ImportError:  # pragma: no cover - a later scipy
    pass

#: Reversed 1-D kernels by (sigma, radius), read-only (correlate, as gaussian_filter1d takes them).
_KERNELS: dict[tuple[float, int], np.ndarray] = {}


def _kernel(sigma: float, radius: int) -> np.ndarray:
    """(2 radius + 1,) the Gaussian kernel of ``sigma`` reversed (:func:`gaussian_filter1d`'s
    weights), contiguous float64, computed once a (sigma, radius)."""
    key = (sigma, radius)
    w = _KERNELS.get(key)
    if w is None:
        assert _BUILD_KERNEL is not None
        w = np.ascontiguousarray(_BUILD_KERNEL(sigma, 0, radius)[::-1], np.float64)
        w.flags.writeable = False
        if len(_KERNELS) >= 64:  # a few pairs recur; clear if callers vary sigma freely
            _KERNELS.clear()
        _KERNELS[key] = w
    return w


def gaussian(
    a: np.ndarray, sigma: float, mode: str = "reflect", truncate: float = 4.0
) -> np.ndarray:
    """``ndimage.gaussian_filter(a, sigma, mode=mode, truncate=truncate)``, the same array
    (dtype of ``a``, cval 0): each axis in turn correlated with the kept kernel of radius
    int(truncate sigma + 0.5), the first pass into a new array, the later ones in place."""
    a = np.asarray(a)
    sd = float(sigma)
    if not sd > 1e-15 or a.ndim == 0 or _BUILD_KERNEL is None:  # gaussian_filter copies then
        return ndimage.gaussian_filter(a, sigma, mode=mode, truncate=truncate)
    w = _kernel(sd, int(truncate * sd + 0.5))
    out = ndimage.correlate1d(a, w, 0, None, mode, 0.0, 0)
    for axis in range(1, a.ndim):
        ndimage.correlate1d(out, w, axis, out, mode, 0.0, 0)
    return out
