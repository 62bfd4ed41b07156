"""Exposure augmentation of detector counts: Poisson resampling and intensity scaling.

A frame of Poisson counts n ~ Poisson(lambda) thinned binomially, n' ~ Binomial(n, f), is
exactly a frame of Poisson(f lambda) counts: the same sample measured for a fraction f of
the time. Dividing by f brings the mean back, so ``n' s / f`` is the frame at the original
intensity times s, with the noise of an exposure f times shorter. Both change no
structural tag; the ranges are kept narrow (f in [0.3, 1], s in [0.8, 1.25]) because
"Strong scattering", "Weak scattering" and "High background" are defined on absolute counts.
Pixels that are negative or not finite (gaps, masked) are left as they are.
"""

from __future__ import annotations

import numpy as np

#: Default ranges of the thinning fraction f and the intensity factor s.
THIN = (0.3, 1.0)
SCALE = (0.8, 1.25)


def resample_exposure(
    counts: np.ndarray,
    rng: np.random.Generator,
    thin: tuple[float, float] = THIN,
    scale: tuple[float, float] = SCALE,
) -> np.ndarray:
    """(rows, cols) float32: valid counts thinned by f ~ U(thin), times s / f, s ~ log-U(scale)."""
    f = rng.uniform(*thin)
    s = float(np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1]))))
    out = np.asarray(counts, dtype=np.float64).copy()
    valid = np.isfinite(out) & (out >= 0)
    n = np.rint(out[valid]).astype(np.int64)
    out[valid] = rng.binomial(n, f) * (s / f)
    return out.astype(np.float32)
