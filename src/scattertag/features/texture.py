"""Sub-cell texture of a cake: how grainy the intensity is along the azimuth inside each cell.

A cake cell spans 360 / A degrees (5.6 at A = 64); the grains of a textured powder ring are
0.3-1.5 degrees wide, so the cell's mean and maximum average them away. This channel keeps
them, at the cost of one more sum over the frame's pixels. Each cell (a, j) is cut along
the azimuth into m equal sub-cells b = 0..m-1 (centred positions x_b = b - (m - 1) / 2).
With

    S_b  the valid counts in sub-cell b,
    E_b  the sum over its valid pixels of P(r), the frame's azimuthal-mean radial profile
         (bins of RADIAL_BIN pixels about the beam centre, interpolated),

a smooth pattern has S_b = E_b (alpha + beta x_b): the profile takes out how the sub-cells
sample the radial profile differently (a sharp ring at high counts would otherwise look
grainy) and beta a smooth azimuthal gradient (anisotropy, polarisation). alpha and beta are
the least-squares fit weighted by E_b; with mu_b = lambda E_b, lambda = sum S / sum E,

    chi2 = sum_b (S_b - E_b (alpha + beta x_b))^2 / (mu_b + FLOOR^2 mu_b^2 + 1),

Poisson variance with a fractional floor (flat-field and profile errors of a few per cent)
and one count (so empty sub-cells of a faint frame are not spikes). For counting noise on a
smooth pattern chi2 / (k - 2) ~ 1 (k sub-cells with pixels, at least 3), so the excess
e = chi2 / (k - 2) - 1 is ~0 and the channel

    log1p(max(e, 0)) / log1p(SATURATION),  clipped to [0, 1],

is ~0 (1 % of the cells of a noise frame reach 0.12-0.17, the tail of chi2 with 2 degrees
of freedom), while an excess of 100 reads 0.5: the ring cells of the grainy rings of
tests/test_texture.py read 0.4-0.7. Cells with fewer than 3 occupied sub-cells (near the
beam) are 0. An integrating detector's gain g
(ADU per photon) multiplies the counting variance: smooth cells then read e ~ g - 1.
"""

from __future__ import annotations

import math

import numpy as np

#: Fractional floor of a sub-cell's variance: relative deviations below ~3 % are not texture.
FLOOR = 0.03
#: Radial bin of the profile P(r), pixels.
RADIAL_BIN = 0.5
#: Excess mapped to 1 by the log scaling (a grain holding a whole sub-cell's counts: ~1e4).
SATURATION = 1e4


class Texture:
    """Set-up of the texture channel for one cake's pixels.

    ``order`` (P,) the cake's flat pixel indices (``polar_order`` of
    :mod:`scattertag.features.views`), ``cells`` (P,) the cell a * R + j of each of them.
    The pixels fall into groups: one sub-cell and one radial bin i = floor(r / RADIAL_BIN),
    numbered so that each sub-cell's groups are consecutive. A frame then costs one sum over
    its pixels (counts per group; the groups' valid pixels and offsets are kept while the
    validity array is the same object): the profile and the E_b come from those group sums.
    P(r) is interpolated about each bin's centre with the central difference,
    P(r) ~ P_i + d (P_{i+1} - P_{i-1}) / 2, d = r / RADIAL_BIN - i - 1/2, so a group's sum
    of P is n P_i + D (P_{i+1} - P_{i-1}) / 2 with n its valid pixels and D the sum of their d.
    """

    #: Attributes that set a Texture up again (:meth:`state`).
    STATE = ("group", "group_bin", "sub_first", "sub_cells", "offset")

    def __init__(
        self,
        shape: tuple[int, int] | None = None,
        beam_center: tuple[float, float] | None = None,
        angles: int = 0,
        subcells: int = 0,
        order: np.ndarray | None = None,
        cells: np.ndarray | None = None,
        state: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.subcells = subcells
        # the last validity seen (None: all valid), its valid pixels and offsets per group
        # and its valid pixels per radial bin
        self._valid: tuple | None = None
        if state is not None:
            for name in self.STATE:
                setattr(self, name, state[name])
            return
        assert shape is not None and beam_center is not None
        assert order is not None and cells is not None
        cx, cy = beam_center
        y, x = np.divmod(order, shape[1])
        dx, dy = x - cx, y - cy
        a = (np.arctan2(dy, dx) + math.pi) * (angles / (2 * math.pi))
        sub = np.minimum(((a - np.floor(a)) * subcells).astype(np.int64), subcells - 1)
        u = np.sqrt(dx * dx + dy * dy) / RADIAL_BIN
        radial = np.floor(u).astype(np.int64)
        self.offset = (u - radial - 0.5).astype(np.float32)
        bins = int(radial.max()) + 1 if len(radial) else 1
        keys, group = np.unique(
            (cells.astype(np.int64) * subcells + sub) * bins + radial, return_inverse=True
        )
        self.group = group.astype(np.intp)  # np.bincount would convert narrower ones
        self.group_bin = (keys % bins).astype(np.intp)
        sub_key = keys // bins
        self.sub_first = np.flatnonzero(np.diff(sub_key, prepend=-1))
        self.sub_cells = sub_key[self.sub_first]

    def state(self) -> dict[str, np.ndarray]:
        """The arrays that set this texture up again: ``Texture(..., state=t.state())``."""
        return {name: getattr(self, name) for name in self.STATE}

    def _group_validity(self, valid: np.ndarray | None, order: np.ndarray) -> tuple:
        """(valid pixels and sum of their offsets per group, valid pixels per radial bin) of
        (H, W) bool ``valid`` (None: all valid); kept while the same array (not modified in
        between) comes again."""
        last = self._valid
        if last is not None and last[0] is valid:
            return last[1:]
        groups = len(self.group_bin)
        v = np.ones(len(order)) if valid is None else np.take(valid, order).astype(np.float64)
        pixels = np.bincount(self.group, v, minlength=groups)
        offsets = np.bincount(self.group, v * self.offset, minlength=groups)
        seen = np.bincount(self.group_bin, pixels)
        self._valid = (valid, pixels, offsets, seen)
        return pixels, offsets, seen

    def __call__(
        self, t: np.ndarray, valid: np.ndarray | None, order: np.ndarray, cells: int
    ) -> np.ndarray:
        """(P,) float32 counts of the ordered pixels (``t = total[order]``, zero where invalid),
        (H, W) bool validity (None: all valid) and ``order`` -> (cells,) float32 channel."""
        m, radial = self.subcells, self.group_bin
        if not len(t):
            return np.zeros(cells, np.float32)
        pixels, offsets, seen = self._group_validity(valid, order)
        have = seen > 0
        if not have.any():
            return np.zeros(cells, np.float32)
        counts = np.bincount(self.group, t, minlength=len(radial))
        centres = np.arange(len(seen))
        profile = np.bincount(radial, counts, minlength=len(seen))[have] / seen[have]
        profile = np.interp(centres, centres[have], profile)
        slope = np.gradient(profile) if len(seen) > 1 else np.zeros(1)
        expected = pixels * profile[radial] + offsets * slope[radial]
        s_sub = np.zeros(cells * m)
        e_sub = np.zeros(cells * m)
        s_sub[self.sub_cells] = np.add.reduceat(counts, self.sub_first)
        e_sub[self.sub_cells] = np.add.reduceat(expected, self.sub_first)
        return texture_channel(s_sub.reshape(cells, m), e_sub.reshape(cells, m))


def texture_channel(s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """(cells, m) sub-cell counts S_b and profile sums E_b -> (cells,) float32 channel in
    [0, 1] (module docstring)."""
    out = np.zeros(len(s), np.float32)
    m = s.shape[1]
    use = e > 0
    k = use.sum(axis=1)
    rows = np.flatnonzero((k >= 3) & (s.sum(axis=1) > 0))  # the others read 0
    use, k = use[rows], k[rows]
    s = np.where(use, s[rows], 0.0)
    e = np.where(use, e[rows], 0.0)
    x = np.arange(m) - (m - 1) / 2
    total_e, total_s = e.sum(axis=1), s.sum(axis=1)
    ex, exx, sx = e @ x, e @ (x * x), s @ x
    spread = exx - ex * ex / total_e  # weighted sum of squares of x about its mean
    slope = np.where(
        spread > 1e-12 * total_e, (sx - ex * total_s / total_e) / np.maximum(spread, 1e-30), 0.0
    )
    level = (total_s - slope * ex) / total_e
    residual = s - e * (level[:, None] + slope[:, None] * x)
    mu = (total_s / total_e)[:, None] * e
    chi2 = (residual * residual / (mu + FLOOR**2 * mu * mu + 1.0)).sum(axis=1)
    excess = np.maximum(chi2 / (k - 2) - 1.0, 0.0)
    out[rows] = np.minimum(np.log1p(excess) / math.log1p(SATURATION), 1.0)
    return out
