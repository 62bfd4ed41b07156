"""How unlike a scattering frame a frame is: the unfamiliarity score, in decades.

Away from sparse spots and edges, a scattering frame is a smooth function of the azimuth
chi = atan2(y - cy, x - cx) at each distance r from the beam centre (rings, halos and
small-angle decay are functions of q; texture, polarisation and absorption vary slowly
with chi), and its pixels scatter about that function at the level of counting
statistics. A photograph, a test chart or uniform noise is neither. The score tests both
on a log-polar grid of cells about the beam centre (the cells of a
:class:`~scattertag.features.views.Cake`, about ``CELL_PIXELS`` pixels a side at half the
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
counts scores 0. docs/unfamiliarity.md gives the measured scores of real frames and of
photographs, noise and a checkerboard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scattertag.features.views import RadialAxis, polar_order

#: Cell side, pixels, at a radius of half the frame's side (cells scale with r).
CELL_PIXELS = 12.0

#: Cells with fewer valid pixels than this have no variance estimate and are left out.
MIN_PIXELS = 3

#: Median of chi-square with one degree of freedom: the median z^2 of a frame smooth in chi.
CHI2_1_MEDIAN = 0.4549

#: The score of a frame with nothing to measure (no cell with valid pixels and counts).
NOTHING = 0.0

#: Pixels gathered at a time: memory stays ~30 bytes x this, whatever the frame size.
CHUNK_PIXELS = 2**20


@dataclass(frozen=True)
class Score:
    """The unfamiliarity of one frame and its two parts, in decades (log10)."""

    structure: float  # roughness along chi beyond the noise
    dispersion: float  # pixel variance over mean (0 for Poisson counts)

    @property
    def value(self) -> float:
        """max(structure, dispersion): the unfamiliarity score."""
        return max(self.structure, self.dispersion)


def pixel_noise(total: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) float32 (I[x-1] - 2 I[x] + I[x+1])^2 / 6 along rows, an estimate of the pixel
    noise variance blind to linear trends, and (H, W) bool where all three pixels are valid."""
    has = np.zeros(valid.shape, bool)
    has[:, 1:-1] = valid[:, :-2] & valid[:, 1:-1] & valid[:, 2:]
    curvature = np.zeros(total.shape, np.float32)
    inner = curvature[:, 1:-1]
    np.add(total[:, :-2], total[:, 2:], out=inner)
    inner -= 2 * total[:, 1:-1]
    inner *= inner
    inner *= has[:, 1:-1] / np.float32(6)
    return curvature, has


def polar_cells(side: int, r_min: float, r_max: float) -> tuple[int, int]:
    """(angles, radii) of a conformal log-polar grid over radii r_min..r_max (fractions of
    ``side``) whose cells are ``CELL_PIXELS`` a side at r = side / 2; angles a multiple of 4."""
    span = math.log(r_max / r_min)
    radii = max(8, round(side * span / (2 * CELL_PIXELS)))
    angles = max(4, 4 * round(2 * math.pi * radii / span / 4))
    return angles, radii


class Unfamiliarity:
    """Set up once per frame shape and beam centre; call on counts and validity for a Score.

    shape : (H, W) of the frames; beam_center : (x, y) pixels; r_min, r_max : the radii the
    cells cover, as fractions of max(H, W) (the cake view's, ``ViewSpec.cake_r_*``). Only
    the cells holding pixels are kept, so memory follows the pixel count.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        beam_center: tuple[float, float],
        r_min: float = 0.004,
        r_max: float = 1.5,
    ) -> None:
        side = max(shape)
        self.angles, self.radii = polar_cells(side, r_min, r_max)
        axis = RadialAxis(r_min * side, r_max * side, self.radii)
        self.order, self.starts, self.cells = polar_order(shape, beam_center, self.angles, axis)

    def __call__(self, total: np.ndarray, valid: np.ndarray) -> Score:
        """Score of valid counts ``total`` (H, W), zero where not ``valid`` (H, W) bool."""
        curvature, has = pixel_noise(np.asarray(total, np.float32), valid)
        n, s, s2, pairs, noise = self._sums(total, valid, curvature, has)
        ok = n >= MIN_PIXELS
        m = np.divide(s, n, out=np.zeros_like(s), where=ok)
        v = np.divide(s2 - n * m * m, n - 1, out=np.zeros_like(s), where=ok).clip(0)
        per_pixel = np.divide(noise, pairs, out=np.zeros_like(s), where=pairs > 0)
        structure = self._structure(m, v / np.maximum(n, 1), ok)
        return Score(structure, self._dispersion(m, per_pixel, pairs, ok & (pairs > 0)))

    def _sums(self, total, valid, curvature, has) -> list[np.ndarray]:
        """Per occupied cell, float64: valid pixels, their counts' sum and sum of squares,
        pixels with a curvature, its sum; gathered ``CHUNK_PIXELS`` at a time."""
        k, starts = len(self.cells), self.starts
        out = [np.zeros(k) for _ in range(5)]
        first = 0
        while first < k:
            lo = int(starts[first])
            last = max(first + 1, int(np.searchsorted(starts, lo + CHUNK_PIXELS, "right")) - 1)
            hi = int(starts[last]) if last < k else len(self.order)
            index, local = self.order[lo:hi], starts[first:last] - lo
            t = np.take(total, index).astype(np.float64)
            parts = (np.take(valid, index), t, t * t, np.take(has, index))
            for o, a in zip(out, (*parts, np.take(curvature, index))):
                o[first:last] = np.add.reduceat(a, local, dtype=np.float64)
            first = last
        return out

    def _structure(self, m: np.ndarray, e: np.ndarray, ok: np.ndarray) -> float:
        """log10 of the median z^2 of second differences along chi (module docstring)."""
        size = self.angles * self.radii  # cell a * R + j; its neighbours along chi are -+ R
        before = self._neighbour((self.cells - self.radii) % size)
        after = self._neighbour((self.cells + self.radii) % size)
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
