"""The two network views of a detector frame, from one shared preprocessing.

``ViewMaker(spec, geometry, mask)(counts, mask)`` returns

* ``image``: ``spec.image_shape``. With ``spec.image_space == "cake"`` (the default) the
  float32 (4, A, R) cake of :class:`Cake`: the frame binned on azimuth x log radius about
  the beam centre. With ``"qcake"`` float32 (5, A, R): the same cells on azimuth x log q
  over the fixed window ``spec.q_min``-``spec.q_max`` (1/A) when pixel size, distance and
  energy are known (channel 4 = 1), or the frame-unit cake when they are not (channel 4 =
  0); see docs/qviews.md. With ``"detector"`` float32 (1, S, S): the frame centred in a square
  (so rings stay round and the aspect ratio is kept; the square is not built), counts
  area-averaged over the *valid* pixels onto S x S. Both are log-scaled:
  ``log1p(mean counts) / log1p(spec.max_counts)``, in [0, 1] for counts up to 2**24, and
  0 where no valid pixel contributes. With ``spec.cake_texture`` = m > 0 either cake gains a
  last channel: the sub-cell texture of :mod:`scattertag.features.texture` (m azimuthal
  sub-cells per cell; ~0 for counting noise on a smooth pattern, towards 1 for grains).
* ``coeff``: float32 (3, N+1, K), the Fourier-Bessel coefficients a_nk of the same
  log-scaled frame on a disk about the beam centre, computed at a working resolution:
  the frame is block-averaged (valid pixels only) by the smallest integer factor b that
  brings its longer side to at most ``spec.fb_size`` pixels, on blocks laid as if the frame
  sat centred in a square (never built: the working frame holds only the blocks the frame
  touches, so memory follows the pixel count, not the longer side squared). So 256, 1000
  and 2000 pixel frames of the same physics give nearly the same matrix. Disk radius:
  ``spec.radius_scale`` times the distance from the beam centre to the farthest frame corner
  (1.0: the disk covers the whole frame, which for a beam centre near a corner means most of
  the disk lies off the frame). Missing
  parts of the disk (off the frame, gaps, non-finite or negative pixels) are handled by
  the regularised least-squares fit of ``FourierBessel`` with ``reg = spec.fit_reg``.

Coefficient channels (orders n = 0..N along rows, zeros k = 1..K along columns), with
``c = a / (sqrt(pi) R)`` (Parseval: sum_{n=-N..N} |c_nk|^2 is the mean square of the
log-scaled frame on the disk, so |c| <= 1 whatever the counts or the resolution) and
``m = log1p(|c| / eps) / log1p(1 / eps)``, eps = ``spec.coeff_floor``:

    channel 0: m             log-magnitude in [0, 1] (rotation-invariant)
    channel 1: m cos(arg c)  phase, weighted by m so that noise-level
    channel 2: m sin(arg c)  coefficients carry little phase
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from scattertag.features.cache import SetupCache
from scattertag.features.fourier_bessel import FourierBessel
from scattertag.features.pedestal import remove_pedestal
from scattertag.features.texture import Texture
from scattertag.geometry import Geometry
from scattertag.io.masks import same_mask, valid_pixels

#: Number of coefficient channels (see the module docstring).
COEFF_CHANNELS = 3

#: Number of cake channels (see :class:`Cake`).
CAKE_CHANNELS = 4

#: Channels of the q cake: the cake's four, then 1 in q (geometry known) or 0 in frame units.
QCAKE_CHANNELS = CAKE_CHANNELS + 1

#: Where the image view lives: the detector frame itself, its "cake" (azimuth x log radius in
#: frame units) or its "qcake" (azimuth x log q when the geometry is known).
IMAGE_SPACES = ("detector", "cake", "qcake")

#: How a frame's pedestal is treated: estimated and subtracted, or left.
PEDESTALS = ("auto", "none")

#: ViewSpec fields that shape the image view and the coefficient view (max_counts: both).
IMAGE_FIELDS = (
    "input_size",
    "max_counts",
    "image_space",
    "cake_angles",
    "cake_radii",
    "cake_r_min",
    "cake_r_max",
    "q_min",
    "q_max",
    "pedestal",
    "cake_texture",
)
COEFF_FIELDS = (
    "orders",
    "zeros",
    "fb_size",
    "radius_scale",
    "fit_reg",
    "max_counts",
    "coeff_floor",
    "pedestal",
)


@dataclass(frozen=True)
class ViewSpec:
    """How frames become network inputs; stored with every dataset and model.

    Attributes
    ----------
    input_size : S, the detector-space network image is (1, S, S).
    image_space : "cake" (see :class:`Cake`), "qcake" (a cake in q when the geometry is known)
        or "detector" (the frame, downsampled).
    cake_angles, cake_radii : A azimuth bins and R log-radius (or log-q) bins of the cake.
    cake_r_min, cake_r_max : radius range of the cake, as fractions of the frame's larger side
        (the q cake's fallback when the geometry is unknown).
    q_min, q_max : the q cake's fixed window, 1/Angstrom, log-spaced over R cells.
    unknown_geometry_fraction : share of a dataset's frames ("qcake" only) whose view is made
        as if pixel size, distance and energy were unknown, so that training covers both;
        it shapes no network input (not in :meth:`fields_for`).
    orders, zeros : N and K of the coefficient view (N+1 orders x K zeros).
    fb_size : working resolution of the FB features: largest side after block-averaging.
    radius_scale : disk radius as a fraction of the beam-centre-to-farthest-corner distance.
    fit_reg : regularisation of the FB least-squares fit (observed-energy threshold).
    max_counts : counts mapped to 1 by the log scaling.
    coeff_floor : |c| below which the log-magnitude channel is ~0.
    pedestal : "auto" subtracts an integrating detector's offset before the views (see
        :mod:`scattertag.features.pedestal`: only frames whose dark pixels are far quieter
        than Poisson have one); "none" leaves counts as read.
    cake_texture : 0 (default: no such channel) or m = 3-16 azimuthal sub-cells per cake cell
        for a last cake channel, the sub-cell texture (:mod:`scattertag.features.texture`).
        Left out of :meth:`to_dict` when 0, so specs without it describe themselves (and
        key set-up caches) as before it existed.
    """

    input_size: int = 256
    orders: int = 15
    zeros: int = 32
    fb_size: int = 256
    radius_scale: float = 1.0
    fit_reg: float = 1e-2
    max_counts: float = 2.0**24
    coeff_floor: float = 1e-3
    image_space: str = "cake"
    cake_angles: int = 64
    cake_radii: int = 256
    cake_r_min: float = 0.004
    cake_r_max: float = 1.5
    q_min: float = 0.003
    q_max: float = 20.0
    unknown_geometry_fraction: float = 0.25
    pedestal: str = "auto"
    cake_texture: int = 0

    def __post_init__(self) -> None:
        if self.image_space not in IMAGE_SPACES:
            raise ValueError(
                f"ViewSpec.image_space must be one of {IMAGE_SPACES}, got {self.image_space!r}"
            )
        if self.cake_angles % 4:
            raise ValueError(
                "ViewSpec.cake_angles must be a multiple of 4 "
                f"(so 90-degree turns map bins to bins), got {self.cake_angles}"
            )
        if not self.cake_r_min < self.cake_r_max:
            raise ValueError(
                f"ViewSpec.cake_r_min ({self.cake_r_min}) must be below cake_r_max "
                f"({self.cake_r_max})"
            )
        if self.pedestal not in PEDESTALS:
            raise ValueError(f"ViewSpec.pedestal must be one of {PEDESTALS}, got {self.pedestal!r}")
        if self.cake_texture and not 3 <= self.cake_texture <= 16:
            raise ValueError(
                "ViewSpec.cake_texture must be 0 (no texture channel) or 3-16 sub-cells, "
                f"got {self.cake_texture!r}"
            )
        if not self.q_min < self.q_max:
            raise ValueError(f"ViewSpec.q_min ({self.q_min}) must be below q_max ({self.q_max})")
        checks = {
            "input_size": (16, 4096),
            "orders": (0, 100),
            "zeros": (1, 200),
            "fb_size": (32, 2048),
            "radius_scale": (0.05, 4.0),
            "fit_reg": (0.0, 10.0),
            "max_counts": (2.0, 1e12),
            "coeff_floor": (1e-8, 0.1),
            "cake_angles": (4, 1024),
            "cake_radii": (8, 2048),
            "cake_r_min": (1e-5, 1.0),
            "cake_r_max": (1e-3, 10.0),
            "q_min": (1e-5, 100.0),
            "q_max": (1e-4, 200.0),
            "unknown_geometry_fraction": (0.0, 1.0),
        }
        for name, (lo, hi) in checks.items():
            value = getattr(self, name)
            if not (lo <= value <= hi):
                raise ValueError(f"ViewSpec.{name} must be in [{lo:g}, {hi:g}], got {value!r}")

    @property
    def is_cake(self) -> bool:
        """True if the image view is a cake (rows azimuth, columns log radius or log q)."""
        return self.image_space in ("cake", "qcake")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, rows, columns) of the image view: (1, S, S), the cake's (4, A, R) or (5, A, R),
        one channel more with ``cake_texture``."""
        if self.is_cake:
            channels = QCAKE_CHANNELS if self.image_space == "qcake" else CAKE_CHANNELS
            return (channels + bool(self.cake_texture), self.cake_angles, self.cake_radii)
        return (1, self.input_size, self.input_size)

    @property
    def coeff_shape(self) -> tuple[int, int, int]:
        """(C, N+1, K) of the coefficient view."""
        return (COEFF_CHANNELS, self.orders + 1, self.zeros)

    def to_dict(self) -> dict:
        """JSON-serialisable dictionary (without ``cake_texture`` when it is 0)."""
        d = asdict(self)
        if not self.cake_texture:
            del d["cake_texture"]
        return d

    def fields_for(self, view: str) -> dict:
        """The fields a ``view`` ("image", "coeff" or "joint") model depends on, as a dict."""
        used = {"image": IMAGE_FIELDS, "coeff": COEFF_FIELDS}.get(view, IMAGE_FIELDS + COEFF_FIELDS)
        # settings of the image space not in use do not shape the network input
        unused = {"detector": ("cake_", "q_"), "cake": ("input_size", "q_")}.get(
            self.image_space, ("input_size",)
        )
        out = {name: getattr(self, name) for name in used if not name.startswith(unused)}
        if not self.cake_texture:
            out.pop("cake_texture", None)  # as before the option existed
        return out

    @classmethod
    def from_dict(cls, d: dict) -> ViewSpec:
        """Inverse of :meth:`to_dict`; unknown keys are an error, missing ones take defaults.

        A dict without ``image_space`` predates the cake and is a detector-space spec.
        """
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"ViewSpec: unknown fields {sorted(unknown)} (known: {sorted(names)})")
        return cls(**{"image_space": "detector", **d})


def geometry_withheld(spec: dict, seed: int, experiment: int, image: int) -> bool:
    """True for the frames a "qcake" dataset makes in frame units, as if pixel size, distance
    and energy were unknown: a uniform draw of rng(seed, experiment, image) below the
    ``unknown_geometry_fraction`` of ``spec`` (:meth:`ViewSpec.to_dict`); the same in any
    process."""
    fraction = spec.get("unknown_geometry_fraction", 0.0)
    if spec.get("image_space") != "qcake" or fraction <= 0:
        return False
    return bool(np.random.default_rng([seed, experiment, image, 0x9CA4E]).random() < fraction)


def area_weights(n_in: int, n_out: int) -> sp.csr_matrix:
    """(n_out, n_in) overlap lengths of output cells (width n_in / n_out) with input pixels."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    first = np.floor(lo).astype(int)
    cols = first + np.arange(int(np.ceil(n_in / n_out)) + 1)[None, :]
    overlap = np.clip(np.minimum(hi, cols + 1) - np.maximum(lo, cols), 0, None)
    keep = (overlap > 1e-12) & (cols < n_in)
    rows = np.broadcast_to(np.arange(n_out)[:, None], cols.shape)
    return sp.csr_matrix((overlap[keep], (rows[keep], cols[keep])), shape=(n_out, n_in))


class RadialAxis:
    """R log-spaced cells of a radial quantity v(r), increasing with the radius r (pixels).

    Cell j holds v in [lo (hi/lo)^(j/R), lo (hi/lo)^((j+1)/R)). Without a geometry v = r
    (pixels: the frame-unit cake); with one v = q(r) = 4 pi sin(theta) / lambda (1/A, the
    q cake), so the same q lands in the same cell at any pixel size, distance or energy.
    """

    def __init__(self, lo: float, hi: float, cells: int, geometry: Geometry | None = None):
        self.lo, self.cells, self.geometry = lo, cells, geometry
        self.scale = cells / math.log(hi / lo)

    def position(self, r: np.ndarray) -> np.ndarray:
        """Continuous cell coordinate of radii ``r`` (pixels): cell j is [j, j + 1)."""
        v = r if self.geometry is None else self.geometry.q_of_radius(r)
        return np.log(np.maximum(v, 1e-12) / self.lo) * self.scale

    def radius(self, u: np.ndarray) -> np.ndarray:
        """Radius (pixels) at cell coordinate ``u``; inf where q is beyond 2 theta = 90 degrees."""
        v = self.lo * np.exp(np.asarray(u, np.float64) / self.scale)
        if self.geometry is None:
            return v
        reach = v * self.geometry.wavelength / (4 * math.pi) < math.sqrt(0.5)  # 2 theta < 90
        out = np.full(v.shape, np.inf)
        out[reach] = self.geometry.radius_of_q(v[reach])
        return out


class Cake:
    """Pixel binning onto azimuth x log-radius (or log-q) cells about the beam centre ("caking").

    Cell (a, j) holds the pixels whose centres have azimuth theta = atan2(y - cy, x - cx)
    in [-pi + a 2pi/A, -pi + (a+1) 2pi/A) and radial cell j of ``axis`` (:class:`RadialAxis`:
    log r in frame units, or log q). This is pyFAI's ``integrate2d``
    without pixel splitting, on a logarithmic radial axis: a ring is a row-parallel line,
    the radii ratios of a lattice (sqrt(2), sqrt(3), ...) are fixed shifts along the
    columns wherever the first peak sits, and turning or mirroring the detector is a
    roll or reversal of the rows. Cells smaller than a pixel (small r) take the pixel
    nearest to their centre. Output channels, float32 (4, A, R):

        0: log-scaled mean of the valid counts in the cell (0 where none is valid)
        1: log-scaled maximum of the valid counts in the cell (spots, speckle)
        2: valid fraction: valid pixels / cell area (0 off the frame, behind the beamstop,
           beyond 2 theta = 90 degrees)
        3: radial coordinate j / (R - 1), so the network knows absolute q, not only ratios
        4: with ``texture`` = m > 0 only: the sub-cell texture (:mod:`scattertag.features.texture`;
           0 in cells taking their nearest pixel); channels 0-3 are the same either way
    """

    def __init__(
        self,
        shape: tuple[int, int],
        beam_center: tuple[float, float],
        angles: int,
        axis: RadialAxis,
        state: dict[str, np.ndarray] | None = None,
        texture: int = 0,
    ) -> None:
        H, W = shape
        cx, cy = beam_center
        radii = axis.cells
        self.angles, self.radii, self.pixels = angles, radii, H * W
        self.coordinate = np.broadcast_to(
            np.linspace(0, 1, radii, dtype=np.float32), (angles, radii)
        )
        self.texture: Texture | None = None
        if state is not None:  # from :meth:`state`, e.g. the on-disk set-up cache
            for name in self.STATE:
                setattr(self, name, state[name])
            if texture:
                self.texture = Texture(subcells=texture, state=_part(state, "texture_"))
            return
        self.order, self.starts, self.cells = polar_order((H, W), (cx, cy), angles, axis)
        if texture:
            cell_of = np.repeat(self.cells, np.diff(self.starts, append=len(self.order)))
            self.texture = Texture((H, W), (cx, cy), angles, texture, self.order, cell_of)
        count = np.zeros(angles * radii, np.int64)
        count[self.cells] = np.diff(self.starts, append=len(self.order))
        # cells with no pixel centre take the nearest pixel to their centre, if it is on the frame
        ac, jc = np.divmod(np.arange(angles * radii), radii)
        tc = -math.pi + (ac + 0.5) * 2 * math.pi / angles
        rc = axis.radius(jc + 0.5)
        reach = np.isfinite(rc)
        rc = np.where(reach, rc, 0.0)
        px, py = (
            np.rint(cx + rc * np.cos(tc)).astype(np.int64),
            np.rint(cy + rc * np.sin(tc)).astype(np.int64),
        )
        on = (count == 0) & reach & (px >= 0) & (px < W) & (py >= 0) & (py < H)
        self.filled, self.fill_pixel = np.flatnonzero(on), (py * W + px)[on]
        edges = axis.radius(np.arange(radii + 1))
        with np.errstate(invalid="ignore"):  # inf - inf past 2 theta = 90 degrees
            ring = np.nan_to_num(np.diff(edges**2), nan=np.inf)
        area = np.tile(0.5 * (2 * math.pi / angles) * ring, angles)
        with np.errstate(over="ignore"):  # cells reaching 2 theta ~ 90 degrees: inf
            self.area = np.maximum(area, count).astype(np.float32)
        self.area[self.filled] = 1.0

    @staticmethod
    def _cells(
        shape: tuple[int, int], center: tuple[float, float], angles: int, axis: RadialAxis
    ) -> np.ndarray:
        """(H * W,) int32 cell a * R + j of each pixel, -1 outside the radial range; computed
        in bands of rows, so the float64 temporaries stay small whatever the frame size."""
        H, W = shape
        cx, cy = center
        cell = np.empty(H * W, np.int32)
        x = np.arange(W)[None, :] - cx
        band = max(1, 2**18 // W)
        for lo in range(0, H, band):
            y = np.arange(lo, min(H, lo + band))[:, None] - cy
            r = x * x + y * y  # sqrt of it: ~5x faster than np.hypot, no overflow to guard
            j = np.floor(axis.position(np.sqrt(r, out=r)))
            out = (j < 0) | (j >= axis.cells)  # outside the radial range (and NaN)
            a = np.arctan2(y, x)
            a += math.pi
            a *= angles
            a /= 2 * math.pi  # (theta + pi) angles / (2 pi), as float64 operations in turn
            here = cell[lo * W : (lo + len(y)) * W].reshape(len(y), W)
            np.floor(a, out=a)
            a[a >= angles] = 0  # theta = pi is theta = -pi
            a *= axis.cells
            a += j  # a * R + j: exact integers in float64
            a[out] = -1
            here[:] = a  # in place: no int64 temporaries
        return cell

    #: Attributes that set a Cake up again (:meth:`state`).
    STATE = ("order", "cells", "starts", "filled", "fill_pixel", "area")

    def state(self) -> dict[str, np.ndarray]:
        """The arrays that set this cake up again: ``Cake(..., state=cake.state())``."""
        out = {name: getattr(self, name) for name in self.STATE}
        if self.texture is not None:
            out.update({f"texture_{k}": v for k, v in self.texture.state().items()})
        return out

    def weights(self, valid: np.ndarray) -> np.ndarray:
        """(A * R,) float32 number of valid pixels per cell of (H, W) bool ``valid``."""
        w = np.zeros(self.angles * self.radii, np.float32)
        if len(self.order):
            w[self.cells] = np.add.reduceat(
                np.take(valid, self.order), self.starts, dtype=np.float32
            )
        w[self.filled] = np.take(valid, self.fill_pixel)
        return w

    def weights_without(
        self, weights: np.ndarray, lost: np.ndarray, valid: np.ndarray
    ) -> np.ndarray:
        """(A * R,) :meth:`weights` of ``valid``, from those (``weights``) of a validity that
        also kept the flat pixels ``lost``: O(lost) work, the same integer counts."""
        cells = self._pixel_cells[lost]
        counts = np.bincount(cells[cells >= 0], minlength=len(weights))
        w = weights - counts.astype(np.float32)
        w[self.filled] = np.take(valid, self.fill_pixel)
        return w

    @cached_property
    def _pixel_cells(self) -> np.ndarray:
        """(H * W,) cell of each pixel, -1 outside the radial range (from the set-up's order,
        on first use: int16 when the cells allow, 2 B a pixel)."""
        dtype = np.int16 if self.angles * self.radii < 2**15 else np.int32
        cell = np.full(self.pixels, -1, dtype)
        cell[self.order] = np.repeat(self.cells, np.diff(self.starts, append=len(self.order)))
        return cell

    def __call__(
        self,
        total: np.ndarray,
        weights: np.ndarray,
        log,
        valid: np.ndarray | None = None,
    ) -> np.ndarray:
        """Valid counts (H, W, zero elsewhere) and cell weights (:meth:`weights`) -> float32
        (4, A, R), or (5, A, R) with texture (``valid``: (H, W) bool, None: all); ``log``
        maps means to [0, 1]."""
        n = self.angles * self.radii
        t = np.take(total, self.order)  # np.take: faster than a.ravel()[index]
        sums, peak = np.zeros(n, np.float32), np.zeros(n, np.float32)
        if len(t):
            sums[self.cells] = np.add.reduceat(t, self.starts)
            peak[self.cells] = np.maximum.reduceat(t, self.starts)  # invalid pixels are 0 in total
        sums[self.filled] = np.take(total, self.fill_pixel)
        peak[self.filled] = sums[self.filled]
        shape = (self.angles, self.radii)
        channels = [
            log(sums, weights).reshape(shape),
            log(peak, (weights > 0).astype(np.float32)).reshape(shape),
            (weights / self.area).reshape(shape),
            self.coordinate,
        ]
        if self.texture is not None:
            grain = self.texture(t, valid, self.order, n)
            grain[self.filled] = 0.0
            channels.append(grain.reshape(shape))
        return np.stack(channels).astype(np.float32)


def polar_order(
    shape: tuple[int, int], center: tuple[float, float], angles: int, axis: RadialAxis
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pixels of a (H, W) frame grouped by cake cell (a * R + j, as :class:`Cake`):
    ``order`` flat pixel indices (intp: ``np.take`` would convert int32 ones on every frame,
    ~2 ms at 1000 x 1000) sorted by cell (pixels outside the radial range left out),
    ``starts`` the position in ``order`` of each occupied cell's first pixel, and ``cells``
    those cells, ascending."""
    cell = Cake._cells(shape, center, angles, axis)
    # int16 cells make numpy's stable sort a radix sort
    key = cell.astype(np.int16) if angles * axis.cells < 2**15 else cell
    order = np.argsort(key, kind="stable")
    del key
    counts = np.bincount(cell + 1, minlength=angles * axis.cells + 1)  # bin 0: outside
    del cell
    cells = np.flatnonzero(counts[1:])
    starts = np.cumsum(counts[1:][cells]) - counts[1:][cells]  # first pixel of each cell
    return order[counts[0] :], starts, cells.astype(np.int32)


#: Names in a set-up's state of the cake weights (:meth:`ViewMaker._weights`), by "in q".
_WEIGHTS: dict[str, Any] = {"cake_in_q": True, "cake": False}


def _part(state: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The entries of ``state`` under ``prefix``, without it."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _sum_rows(a: np.ndarray, block: int, offset: int) -> np.ndarray:
    """(H, ...) -> (ceil((offset + H) / b), ...) float32 sums of rows in blocks of b, row 0 of
    ``a`` at position ``offset`` of its block; added one row after another (exact order)."""
    n = -(-(offset + a.shape[0]) // block)
    out = np.zeros((n, *a.shape[1:]), np.float32)
    for i in range(block):  # rows at position i of their block
        first, skip = (i - offset, 0) if i >= offset else (i - offset + block, 1)
        rows = a[first::block]
        out[skip : skip + len(rows)] += rows
    return out


def block_sum(a: np.ndarray, block: int, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """(H, W) -> (ceil((oy + H) / b), ceil((ox + W) / b)) float32 sums over b x b blocks.

    ``offset`` (oy, ox): where pixel (0, 0) of ``a`` sits in its block, so the blocks may
    start before the frame and end after it (missing pixels count as zero) with no padded
    copy: memory ~ the pixel count. Rows first (contiguous adds), then b strided column
    adds: ~1 ns a pixel.
    """
    rows = _sum_rows(a, block, offset[0])
    return np.ascontiguousarray(_sum_rows(rows.T, block, offset[1]).T)


class ViewMaker:
    """Set up once per geometry (and static mask); call on counts to get both views.

    ``geometry_known``: whether the geometry's pixel size, distance and energy are known
    (given, from a PONI file or a header) rather than the reference detector's defaults;
    a "qcake" view is in q only when they are (else in frame units, channel 4 = 0).
    """

    def __init__(
        self,
        spec: ViewSpec,
        geometry: Geometry,
        mask: np.ndarray | None = None,
        cache: SetupCache | None = None,
        geometry_known: bool = True,
    ) -> None:
        self.spec, self.geometry = spec, geometry
        self.geometry_known = geometry_known
        H, W = geometry.shape
        if mask is not None and np.shape(mask) != (H, W):
            raise ValueError(
                f"ViewMaker: mask shape {np.shape(mask)} differs from the geometry's {(H, W)}"
            )
        self.mask = None if mask is None else np.asarray(mask, dtype=bool)
        self._static = np.ones((H, W), bool) if self.mask is None else self.mask
        # The frame is never padded: the Fourier-Bessel working frame holds the blocks of
        # ``block`` x ``block`` pixels that the frame touches, laid as if the frame sat centred
        # in a square of side ``padded_side`` (a multiple of the block), so frames of any shape
        # and square ones are sampled alike; memory follows the pixel count.
        side = max(H, W)
        self.block = math.ceil(side / spec.fb_size)
        padded_side = self.block * math.ceil(side / self.block)
        top, left = (padded_side - H) // 2, (padded_side - W) // 2
        self.offset = (top % self.block, left % self.block)  # of pixel (0, 0) in its block
        work = (
            -(-(self.offset[0] + H) // self.block),
            -(-(self.offset[1] + W) // self.block),
        )
        cx, cy = geometry.beam_center
        f = 1.0 / self.block
        wx, wy = (cx + self.offset[1] + 0.5) * f - 0.5, (cy + self.offset[0] + 0.5) * f - 0.5
        self.work_center = (wx, wy)  # beam centre on the (rows, cols) ``work`` frame
        # farthest corner of the frame, in working pixels (corner pixel centres)
        xs = (np.array([self.offset[1], self.offset[1] + W - 1]) + 0.5) * f - 0.5
        ys = (np.array([self.offset[0], self.offset[0] + H - 1]) + 0.5) * f - 0.5
        corner = np.hypot(xs[:, None] - wx, ys[None, :] - wy).max()
        self.radius = spec.radius_scale * max(corner, 2.0)
        self._side_px = side
        if not spec.is_cake:  # (S, side) area weights of the centred square, cut to the frame
            to_image = area_weights(padded_side, spec.input_size).tocsc()
            self.to_image = (
                to_image[:, top : top + H].tocsr(),
                to_image[:, left : left + W].tocsr(),
            )
        described = spec.to_dict()
        if spec.image_space == "qcake":
            described["geometry_known"] = geometry_known  # which cake the set-up holds
        key = None if cache is None else cache.key(described, geometry.to_dict(), mask=mask)
        state = None if key is None else cache.load(key)  # type: ignore[union-attr]
        self._unfamiliarity: Any = None  # its set-up, on first use (with_unfamiliarity)
        try:
            self._set_up(state, work, (wx, wy))
        except (KeyError, IndexError, ValueError, UnicodeDecodeError):
            if state is None:
                raise
            state = None  # a damaged or foreign cache entry: set up from scratch instead
            self._set_up(None, work, (wx, wy))
        self._log_max = math.log1p(spec.max_counts)
        # the weights of the static mask's validity (:meth:`_weights`), once computed or loaded
        self._static_weights: dict | None = None
        # the last frame's validity, its weights, the static pixels it lacks (None: computed
        # afresh)
        self._last: tuple[np.ndarray, dict, np.ndarray | None] | None = None
        if state is not None:
            if "weights/work" in state:  # those of every pixel the static mask keeps
                stored = _part(state, "weights/")
                self._static_weights = {_WEIGHTS.get(name, name): w for name, w in stored.items()}
            return
        if self.mask is not None or not self.fb.disk_in_frame:  # factorise the fit now
            ok = self._weights(self._static_valid())["work"] > 0
            self.fb.transform(np.zeros(ok.shape, np.float32), mask=ok, reg=spec.fit_reg)
        if cache is not None:  # tagging (the cache's user) scores every frame: keep that too
            self._set_up_unfamiliarity()
            self._weights(self._static_valid(), self._in_q(None) if spec.is_cake else None)
            # written by a thread while this frame goes on (the file's fsync waits on the disk)
            cache.store(key, self.state(), wait=False)  # type: ignore[arg-type]

    def _static_valid(self) -> np.ndarray:
        """(H, W) bool: the pixels the static mask keeps (all without one), the validity of a
        frame with no gap, NaN or negative pixel of its own."""
        return self._static

    def state(self) -> dict[str, np.ndarray]:
        """Arrays that set this ViewMaker up again (FB operator and factors, cake, the
        unfamiliarity score once set up, the weights of the static mask's validity once
        computed), by name."""
        out = {f"fb/{k}": v for k, v in self.fb.state().items()}
        if self.spec.is_cake:
            out.update({f"cake/{k}": v for k, v in self.cake.state().items()})
        if self._unfamiliarity is not None:
            out.update({f"unfamiliarity/{k}": v for k, v in self._unfamiliarity.state().items()})
        if self._static_weights is not None:
            names = {key: name for name, key in _WEIGHTS.items()}
            out.update({f"weights/{names.get(k, k)}": v for k, v in self._static_weights.items()})
        return out

    def _set_up(
        self, state: dict | None, work: tuple[int, int], center: tuple[float, float]
    ) -> None:
        """The Fourier-Bessel operator and the cake (and the unfamiliarity score, if cached),
        from cached ``state`` arrays or anew."""
        spec = self.spec
        fb_state = None if state is None else _part(state, "fb/")
        self.fb = FourierBessel(work, center, self.radius, spec.orders, spec.zeros, state=fb_state)
        self._cakes: dict[bool, Cake] = {}  # by "in q"
        if spec.is_cake:
            cake_state = None if state is None else _part(state, "cake/")
            self.cake = self._cake(self._in_q(None), cake_state)
        if state is not None and any(name.startswith("unfamiliarity/") for name in state):
            self._set_up_unfamiliarity(_part(state, "unfamiliarity/"))

    def _in_q(self, geometry_known: bool | None) -> bool:
        """True if this frame's cake is in q: a "qcake" spec and a known geometry."""
        known = self.geometry_known if geometry_known is None else geometry_known
        return self.spec.image_space == "qcake" and known

    def _cake(self, in_q: bool, state: dict[str, np.ndarray] | None = None) -> Cake:
        """The cake in q or in frame units, set up on first use."""
        if in_q not in self._cakes:
            spec = self.spec
            if in_q:
                axis = RadialAxis(spec.q_min, spec.q_max, spec.cake_radii, self.geometry)
            else:
                side = self._side_px
                axis = RadialAxis(spec.cake_r_min * side, spec.cake_r_max * side, spec.cake_radii)
            self._cakes[in_q] = Cake(
                self.geometry.shape,
                self.geometry.beam_center,
                spec.cake_angles,
                axis,
                state,
                texture=spec.cake_texture,
            )
        return self._cakes[in_q]

    def __call__(
        self,
        counts: np.ndarray,
        mask: np.ndarray | None = None,
        geometry_known: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """counts (H, W) -> (image float32 ``spec.image_shape``, coeff float32 (3, N+1, K)).

        ``geometry_known`` overrides the maker's for this frame (None: the maker's)."""
        return self._views(*self._prepare(counts, mask), geometry_known)

    def _views(
        self, total: np.ndarray, valid: np.ndarray, geometry_known: bool | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(image, coeff) of prepared counts and validity (:meth:`_prepare`)."""
        image = self._image(total, valid, self._in_q(geometry_known))
        return image, self.channels(self._fourier_bessel(total, valid)[2])

    def with_unfamiliarity(
        self,
        counts: np.ndarray,
        mask: np.ndarray | None = None,
        geometry_known: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """counts (H, W) -> (image, coeff) as :meth:`__call__`, and the frame's unfamiliarity
        score in decades (:mod:`scattertag.features.unfamiliarity`)."""
        total, valid = self._prepare(counts, mask)
        image, coeff = self._views(total, valid, geometry_known)
        return image, coeff, self.unfamiliarity(total, valid).value

    def unfamiliarity(self, total: np.ndarray, valid: np.ndarray):
        """The unfamiliarity Score of valid counts and validity (:meth:`_prepare`)."""
        if self._unfamiliarity is None:  # set up on first use: training never needs it
            self._set_up_unfamiliarity()
        return self._unfamiliarity(total, valid)

    def _set_up_unfamiliarity(self, state: dict[str, np.ndarray] | None = None) -> None:
        """The unfamiliarity score's set-up, from cached ``state`` arrays or anew."""
        from scattertag.features.unfamiliarity import Unfamiliarity

        spec, geometry = self.spec, self.geometry
        self._unfamiliarity = Unfamiliarity(
            geometry.shape, geometry.beam_center, spec.cake_r_min, spec.cake_r_max, state
        )

    def image(
        self,
        counts: np.ndarray,
        mask: np.ndarray | None = None,
        geometry_known: bool | None = None,
    ) -> np.ndarray:
        """counts (H, W) -> the image view alone, float32 ``spec.image_shape``."""
        return self._image(*self._prepare(counts, mask), self._in_q(geometry_known))

    def fourier_bessel(
        self, counts: np.ndarray, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """counts (H, W) -> (working log-scaled frame, its validity, complex a (N+1, K))."""
        return self._fourier_bessel(*self._prepare(counts, mask))

    def channels(self, a: np.ndarray) -> np.ndarray:
        """Complex (N+1, K) coefficients -> float32 (3, N+1, K) network input (module docstring)."""
        c = a / (math.sqrt(math.pi) * self.radius)
        eps = self.spec.coeff_floor
        m = np.log1p(np.abs(c) / eps) / math.log1p(1 / eps)
        phase = np.angle(c)
        return np.stack([m, m * np.cos(phase), m * np.sin(phase)]).astype(np.float32)

    def _prepare(
        self, counts: np.ndarray, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(H, W) valid counts (float32, zero elsewhere) and validity (bool)."""
        counts = np.asarray(counts)
        if counts.shape != self.geometry.shape:
            raise ValueError(
                f"ViewMaker: counts shape {counts.shape} differs from the geometry's "
                f"{self.geometry.shape}"
            )
        if mask is not None and np.shape(mask) != counts.shape:
            raise ValueError(
                f"ViewMaker: mask shape {np.shape(mask)} differs from counts shape {counts.shape}"
            )
        valid = valid_pixels(counts, self.mask, mask)
        if not valid.any():
            raise ValueError("no valid pixels (all masked, negative, dummy or not finite)")
        if same_mask(valid, self._static):  # the static validity: its weights, no compare again
            valid = self._static
        if counts.dtype.kind in "ub":  # no NaN: a conversion, then zeros where invalid
            total = counts.astype(np.float32)
            if self.mask is not None or valid is not self._static:
                np.multiply(total, valid, out=total)
        else:
            total = np.zeros(counts.shape, np.float32)
            np.copyto(total, counts, casting="unsafe", where=valid)
        if self.spec.pedestal == "auto":
            remove_pedestal(total, valid)
        return total, valid

    def _weights(self, valid: np.ndarray, in_q: bool | None = None) -> dict:
        """Valid pixels per working pixel and per cell of the cake ``in_q`` (None: no cake).

        Those of the static mask's validity are kept; another validity's are reused while it
        repeats, and when it lacks a few of the static pixels (a frame's NaN block, hot
        pixels), they are the static ones less the counts of those pixels. Counts are
        integers in float32, so either way they are the numbers computed afresh.
        """
        weights: dict
        if valid is self._static_valid():
            weights, lost = self._static_work(), None
        else:
            last = self._last
            if last is None or not same_mask(last[0], valid):
                last = self._last = (valid, *self._weights_of(valid))
            _, weights, lost = last
        if in_q is not None and in_q not in weights:
            cake = self._cake(in_q)
            if lost is None:
                weights[in_q] = cake.weights(valid)
            else:
                static = self._weights(self._static_valid(), in_q)[in_q]
                weights[in_q] = cake.weights_without(static, lost, valid)
        return weights

    def _static_work(self) -> dict:
        """The weights of the static mask's validity (working frame; cakes once asked)."""
        if self._static_weights is None:
            work = block_sum(self._static_valid(), self.block, self.offset)
            self._static_weights = {"work": work}
        return self._static_weights

    def _weights_of(self, valid: np.ndarray) -> tuple[dict, np.ndarray | None]:
        """(the working-frame weights of ``valid``, the static pixels it lacks or None)."""
        static = self._static_work()
        lost = np.flatnonzero(self._static_valid() != valid)
        if len(lost) == 0:
            return static, None
        if len(lost) > valid.size // 16 or valid.reshape(-1)[lost].any():
            return {"work": block_sum(valid, self.block, self.offset)}, None
        rows, cols = np.divmod(lost, valid.shape[1])
        work = static["work"]
        cells = ((rows + self.offset[0]) // self.block) * work.shape[1] + (
            cols + self.offset[1]
        ) // self.block
        counts = np.bincount(cells, minlength=work.size).reshape(work.shape)
        return {"work": work - counts.astype(np.float32)}, lost

    @staticmethod
    def _area_sum(a: np.ndarray, weights: tuple[sp.csr_matrix, sp.csr_matrix]) -> np.ndarray:
        """rows @ a @ cols.T: sums of ``a`` over the output cells, (H, W) -> (S, S)."""
        rows, cols = weights
        return np.asarray(cols @ np.ascontiguousarray((rows @ a).T)).T

    def _image(self, total: np.ndarray, valid: np.ndarray, in_q: bool = False) -> np.ndarray:
        """The image view: area-averaged, log-scaled (1, S, S) frame, or its cake: (4, A, R),
        or (5, A, R) for "qcake" with channel 4 = 1 in q, 0 in frame units; the texture
        channel (``cake_texture``) last."""
        if self.spec.is_cake:
            weights = self._weights(valid, in_q)[in_q]
            cake = self._cake(in_q)(total, weights, self._log, valid)
            if self.spec.image_space == "cake":
                return cake
            flag = np.full((1, *cake.shape[1:]), float(in_q), np.float32)
            return np.concatenate([cake[:CAKE_CHANNELS], flag, cake[CAKE_CHANNELS:]])
        weight = valid.astype(np.float32)
        return self._log(
            self._area_sum(total, self.to_image), self._area_sum(weight, self.to_image)
        )[None]

    def _log(self, total: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """log1p(total / weight) / log1p(max_counts) as float32, 0 where weight is ~0."""
        ok = weight > 1e-6
        mean = np.divide(total, weight, out=np.zeros_like(total), where=ok)
        return (np.log1p(np.clip(mean, 0, None)) / self._log_max).astype(np.float32)

    def _fourier_bessel(
        self, total: np.ndarray, valid: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Block-average, log-scale and expand: (working frame, validity, a)."""
        t, w = block_sum(total, self.block, self.offset), self._weights(valid)["work"]
        frame, ok = self._log(t, w), w > 0
        base = self._static_work()["work"] > 0  # factorised once
        return frame, ok, self.fb.transform(frame, mask=ok, reg=self.spec.fit_reg, base=base)
