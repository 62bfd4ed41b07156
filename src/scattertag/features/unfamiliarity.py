"""How unlike a scattering frame a frame is: the unfamiliarity score, in decades.

Away from sparse spots and edges, a scattering frame is a smooth function of the azimuth
chi = atan2(y - cy, x - cx) at each distance r from the beam centre (rings, halos and
small-angle decay are functions of q; texture, polarisation and absorption vary slowly
with chi), and its pixels scatter about that function at the level of counting
statistics. A photograph, a test chart or uniform noise is neither. The score tests both
on a log-polar grid of cells about the beam centre (cells as a
:class:`~scattertag.features.views.Cake`'s, about ``CELL_PIXELS`` pixels a side at half the
frame's side, as wide in chi as in r: log-polar coordinates are conformal). With, for each
cell, the mean m of its valid counts, their variance v and their number n (cells with
n >= ``MIN_PIXELS``):

    structure  s = log10( median over cells a of z_a^2 / 0.455 ),
               z_a^2 = (m_{a-1} - 2 m_a + m_{a+1})^2 / (e_{a-1} + 4 e_a + e_{a+1}),  e = v / n,

the second difference along chi in units of its own noise (0.455 is the median of
chi-square with one degree of freedom, so s ~ 0 when the frame is smooth in chi, and a
linear trend in chi costs nothing); and

    dispersion d = log10( median over cells, weighted by their pixels, of p / m ),

the index of dispersion of the pixels, with p the cell's mean of
(I[x-1] - 2 I[x] + I[x+1])^2 / 6 along rows (the pixel noise variance, blind to intensity
that varies linearly across a few pixels): 0 for Poisson counts. The score is
``max(s, d)``: ~0 for a frame like the training data, 1 for a frame ten times rougher in chi
than its noise or ten times noisier than counting statistics. Too little noise is not
counted: integrating detectors whose pixels share charge or light (flat panels, d ~ -0.5)
and noise-free frames are not unlike a scattering frame for that alone. A frame with no
counts scores 0.

Both medians are taken over a sample of the cells, so that a frame costs ~the same whatever
its size: arcs of ``ARC_CELLS`` cells along chi, one in k, staggered from ring to ring so
that every radius and every azimuth is sampled, with k chosen to gather ~``SAMPLE_PIXELS``
pixels (all cells up to that; k = 16 at 1000 x 1000). Each sampled cell is measured as
before; only their number shrinks. docs/unfamiliarity.md gives the measured scores of real
frames and of photographs, noise and a checkerboard, and the cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scattertag.features.views import RadialAxis
from scattertag.io.masks import same_mask

#: Cell side, pixels, at a radius of half the frame's side (cells scale with r).
CELL_PIXELS = 12.0

#: Cells with fewer valid pixels than this have no variance estimate and are left out.
MIN_PIXELS = 3

#: Median of chi-square with one degree of freedom: the median z^2 of a frame smooth in chi.
CHI2_1_MEDIAN = 0.4549

#: The score of a frame with nothing to measure (no cell with valid pixels and counts).
NOTHING = 0.0

#: Pixels the score gathers per frame, about: above this, one arc of cells in k is scored.
SAMPLE_PIXELS = 2**16

#: Cells along chi in each sampled arc, a power of 2 (each arc gives ARC_CELLS - 2 second
#: differences along chi).
ARC_CELLS = 8


@dataclass(frozen=True)
class Score:
    """The unfamiliarity of one frame and its two parts, in decades (log10)."""

    structure: float  # roughness along chi beyond the noise
    dispersion: float  # pixel variance over mean (0 for Poisson counts)

    @property
    def value(self) -> float:
        """max(structure, dispersion): the unfamiliarity score."""
        return max(self.structure, self.dispersion)


def polar_cells(side: int, r_min: float, r_max: float) -> tuple[int, int]:
    """(angles, radii) of a conformal log-polar grid over radii r_min..r_max (fractions of
    ``side``) whose cells are ``CELL_PIXELS`` a side at r = side / 2; angles a multiple of 4."""
    span = math.log(r_max / r_min)
    radii = max(8, round(side * span / (2 * CELL_PIXELS)))
    angles = max(4, 4 * round(2 * math.pi * radii / span / 4))
    return angles, radii


def sample_stride(pixels: int) -> int:
    """k, a power of 2: score one arc of cells in k so that at most ~``SAMPLE_PIXELS`` of
    ``pixels`` remain."""
    return 1 << max(0, math.ceil(math.log2(max(pixels, 1) / SAMPLE_PIXELS)))


def sampled_cells(
    shape: tuple[int, int], center: tuple[float, float], angles: int, axis: RadialAxis, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of the sampled cells of a (H, W) frame's conformal log-polar grid: cell
    (a, j) (azimuth a of ``angles`` as a :class:`~scattertag.features.views.Cake`'s, ring j of
    ``axis``) is sampled when (a // ``ARC_CELLS`` + j) % k == 0 (k a power of 2), arcs
    staggered from ring to ring. Returns int64 flat pixel indices, ascending, and the cell
    a * R + j of each. float32 coordinates, in bands of rows (memory ~ a band)."""
    H, W = shape
    cx, cy = center
    x = (np.arange(W) - cx).astype(np.float32)[None, :]
    offset, scale = np.float32(math.log(axis.lo)), np.float32(0.5 * axis.scale)
    per_radian, arc = np.float32(angles / (2 * math.pi)), int(math.log2(ARC_CELLS))
    band = max(1, 2**18 // W)
    index, cell = [], []
    for lo in range(0, H, band):
        y = (np.arange(lo, min(H, lo + band)) - cy).astype(np.float32)[:, None]
        r2 = np.maximum(x * x + y * y, np.float32(1e-24))  # log r = log(r^2) / 2
        j = np.floor((np.log(r2) - 2 * offset) * scale).astype(np.int32)
        a = np.floor((np.arctan2(y, x) + np.float32(math.pi)) * per_radian).astype(np.int32)
        a[a >= angles] = 0  # chi = pi is chi = -pi
        keep = ((a >> arc) + j) & (k - 1) == 0
        keep &= (j >= 0) & (j < axis.cells)
        here = np.flatnonzero(keep)
        index.append(here + lo * W)
        cell.append(a.ravel()[here].astype(np.int64) * axis.cells + j.ravel()[here])
    return np.concatenate(index), np.concatenate(cell)


class Unfamiliarity:
    """Set up once per frame shape and beam centre; call on counts and validity for a Score.

    shape : (H, W) of the frames; beam_center : (x, y) pixels; r_min, r_max : the radii the
    cells cover, as fractions of max(H, W) (the cake view's, ``ViewSpec.cake_r_*``). The
    medians are taken over a sample of the cells (:func:`sampled_cells`): arcs of
    ``ARC_CELLS`` cells along chi, one in k (:func:`sample_stride`: k = 1, every cell, up to
    ``SAMPLE_PIXELS`` pixels; 16 at 1000 x 1000, 64 at 2048 x 2048), staggered so that every
    ring and every azimuth is sampled. The cost per frame and the memory stay ~those of
    ``SAMPLE_PIXELS`` pixels whatever the frame size: the sampled pixels are gathered in
    memory order and summed per cell with ``np.bincount``, no sort at set-up or per frame.
    """

    #: Arrays that set an Unfamiliarity up again (:meth:`state`).
    STATE = ("index", "cells", "place")

    def __init__(
        self,
        shape: tuple[int, int],
        beam_center: tuple[float, float],
        r_min: float = 0.004,
        r_max: float = 1.5,
        state: dict[str, np.ndarray] | None = None,
    ) -> None:
        H, W = shape
        side = max(shape)
        self.angles, self.radii = polar_cells(side, r_min, r_max)
        axis = RadialAxis(r_min * side, r_max * side, self.radii)
        self.stride = sample_stride(H * W)
        if state is not None:  # from :meth:`state`, e.g. the on-disk set-up cache
            self.index, self.cells, self.place = (state[name] for name in self.STATE)
        else:
            #: sampled pixels (flat indices, ascending)
            self.index, cell = sampled_cells(shape, beam_center, self.angles, axis, self.stride)
            occupied = np.zeros(self.angles * self.radii, bool)
            occupied[cell] = True
            #: the occupied cells a * R + j, ascending, and each sampled pixel's place among them
            self.cells = np.flatnonzero(occupied)
            place = np.zeros(len(occupied), np.int64)
            place[self.cells] = np.arange(len(self.cells))
            self.place = place[cell]
        size = self.angles * self.radii  # neighbours along chi: cells -+ R, around the circle
        self.before = self._neighbour((self.cells - self.radii) % size)
        self.after = self._neighbour((self.cells + self.radii) % size)
        column = self.index % W
        self.inner = (column > 0) & (column < W - 1)  # pixels with both row neighbours
        # the row neighbours of each sampled pixel (itself at the frame's edges: never inner)
        self.left = np.where(self.inner, self.index - 1, self.index)
        self.right = np.where(self.inner, self.index + 1, self.index)
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def state(self) -> dict[str, np.ndarray]:
        """The arrays that set this score up again: ``Unfamiliarity(..., state=u.state())``."""
        return {name: getattr(self, name) for name in self.STATE}

    def __call__(self, total: np.ndarray, valid: np.ndarray) -> Score:
        """Score of valid counts ``total`` (H, W), zero where not ``valid`` (H, W) bool."""
        n, pairs, weight = self._validity(valid)
        s, s2, noise = self._sums(total, weight)
        ok = n >= MIN_PIXELS
        m = np.divide(s, n, out=np.zeros_like(s), where=ok)
        v = np.divide(s2 - n * m * m, n - 1, out=np.zeros_like(s), where=ok).clip(0)
        per_pixel = np.divide(noise, pairs, out=np.zeros_like(s), where=pairs > 0)
        structure = self._structure(m, v / np.maximum(n, 1), ok)
        return Score(structure, self._dispersion(m, per_pixel, pairs, ok & (pairs > 0)))

    def _per_cell(self, values: np.ndarray) -> np.ndarray:
        """(cells,) float64 sums of per-pixel ``values`` over each occupied cell."""
        # float64 even when no pixel is sampled (numpy's bincount then gives int64)
        return np.bincount(self.place, values, len(self.cells)).astype(np.float64, copy=False)

    def _validity(self, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per cell, float64: valid pixels and pixels whose row neighbours are valid too; per
        sampled pixel, float32 1/6 for the latter, else 0. Reused while ``valid`` repeats."""
        if self._last is None or not same_mask(self._last[0], valid):
            has = np.take(valid, self.index)
            both = has & np.take(valid, self.left) & np.take(valid, self.right) & self.inner
            n, pairs = self._per_cell(has), self._per_cell(both)
            self._last = (valid.copy(), n, pairs, both * np.float32(1 / 6))
        return self._last[1:]

    def _sums(self, total: np.ndarray, weight: np.ndarray) -> list[np.ndarray]:
        """Per cell, float64: the sums of the valid counts ``total`` (zero elsewhere), of their
        squares, and of the pixel noise ``weight`` (I[x-1] - 2 I[x] + I[x+1])^2 (``weight``:
        1/6 where it applies, else 0); three float32 gathers in memory order."""
        t = np.take(total, self.index).astype(np.float32, copy=False)
        curvature = np.take(total, self.left).astype(np.float32, copy=False)
        curvature += np.take(total, self.right)
        curvature -= 2 * t
        curvature *= curvature
        curvature *= weight
        t64 = t.astype(np.float64)
        s = self._per_cell(t64)
        t64 *= t64
        return [s, self._per_cell(t64), self._per_cell(curvature)]

    def _structure(self, m: np.ndarray, e: np.ndarray, ok: np.ndarray) -> float:
        """log10 of the median z^2 of second differences along chi (module docstring)."""
        before, after = self.before, self.after
        use = ok & (before >= 0) & (after >= 0)
        use[use] &= ok[before[use]] & ok[after[use]]
        i, b, a = np.flatnonzero(use), before[use], after[use]
        second = m[b] - 2 * m[i] + m[a]
        noise = e[b] + 4 * e[i] + e[a]
        keep = noise > 0
        if not keep.any():
            return NOTHING
        z2 = second[keep] ** 2 / noise[keep]
        return math.log10(max(float(np.median(z2)), 1e-6) / CHI2_1_MEDIAN)

    def _neighbour(self, cells: np.ndarray) -> np.ndarray:
        """Position of each of ``cells`` among the occupied cells, -1 where not occupied."""
        if not len(self.cells):
            return np.zeros(0, np.int64)
        at = np.searchsorted(self.cells, cells).clip(max=len(self.cells) - 1)
        return np.where(self.cells[at] == cells, at, -1)

    @staticmethod
    def _dispersion(m: np.ndarray, v: np.ndarray, n: np.ndarray, ok: np.ndarray) -> float:
        """log10 of the median over cells with counts of v / m, weighted by n."""
        use = ok & (m > 0)
        if not use.any():
            return NOTHING
        ratio, weight = v[use] / m[use], n[use]
        order = np.argsort(ratio)
        cumulative = np.cumsum(weight[order])
        median = ratio[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])]
        return math.log10(max(float(median), 1e-6))


#: The frames that must score above every real one: name -> grey levels in [0, 1].
PROBES = ("camera", "astronaut", "uniform noise", "checkerboard")


def probe_frames(scale: float = 1e4, seed: int = 0) -> dict[str, np.ndarray]:
    """Frames unlike any scattering frame, as float64 counts from 0 to ``scale``:
    scikit-image's camera (512 x 512) and astronaut in grey (512 x 512), uniform noise
    (512 x 512, ``seed``) and its checkerboard (200 x 200, 25-pixel squares).

    Needs scikit-image (the ``test`` extra)."""
    from skimage import color, data

    grey = {
        "camera": data.camera() / 255.0,
        "astronaut": color.rgb2gray(data.astronaut()),
        "uniform noise": np.random.default_rng(seed).random((512, 512)),
        "checkerboard": data.checkerboard() / 255.0,
    }
    return {name: scale * grey[name] for name in PROBES}
