"""The two network views of a detector frame, from one shared preprocessing.

``ViewMaker(spec, geometry, mask)(counts, mask)`` returns

* ``image``: float32 (1, S, S). The frame is padded to a square (centred, so rings stay
  round and the aspect ratio is kept), counts are area-averaged over the *valid* pixels
  onto S x S, then log-scaled: ``log1p(mean counts) / log1p(spec.max_counts)``, in
  [0, 1] for counts up to 2**24. Output pixels with no valid input pixel are 0.
* ``coeff``: float32 (3, N+1, K), the Fourier-Bessel coefficients a_nk of the same
  log-scaled frame on a disk about the beam centre, computed at a working resolution:
  the padded frame is block-averaged (valid pixels only) by the smallest integer factor
  that brings it to at most ``spec.fb_size`` pixels a side, with the geometry scaled by
  ``Geometry.resized``. So 256, 1000 and 2000 pixel frames of the same physics give
  nearly the same matrix. Disk radius: ``spec.radius_scale`` times the distance from the
  beam centre to the farthest frame corner (1.0: the disk covers the whole frame, which
  for a beam centre near a corner means most of the disk lies off the frame). Missing
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

import numpy as np
import scipy.sparse as sp

from scattertag.features.fourier_bessel import FourierBessel
from scattertag.geometry import Geometry

#: Number of coefficient channels (see the module docstring).
COEFF_CHANNELS = 3

#: ViewSpec fields that shape the image view and the coefficient view (max_counts: both).
IMAGE_FIELDS = ("input_size", "max_counts")
COEFF_FIELDS = ("orders", "zeros", "fb_size", "radius_scale", "fit_reg", "max_counts", "coeff_floor")


@dataclass(frozen=True)
class ViewSpec:
    """How frames become network inputs; stored with every dataset and model.

    Attributes
    ----------
    input_size : S, the network image is (1, S, S).
    orders, zeros : N and K of the coefficient view (N+1 orders x K zeros).
    fb_size : working resolution of the FB features: largest side after block-averaging.
    radius_scale : disk radius as a fraction of the beam-centre-to-farthest-corner distance.
    fit_reg : regularisation of the FB least-squares fit (observed-energy threshold).
    max_counts : counts mapped to 1 by the log scaling.
    coeff_floor : |c| below which the log-magnitude channel is ~0.
    """

    input_size: int = 256
    orders: int = 15
    zeros: int = 32
    fb_size: int = 256
    radius_scale: float = 1.0
    fit_reg: float = 1e-2
    max_counts: float = 2.0**24
    coeff_floor: float = 1e-3

    def __post_init__(self) -> None:
        checks = {
            "input_size": (16, 4096), "orders": (0, 100), "zeros": (1, 200), "fb_size": (32, 2048),
            "radius_scale": (0.05, 4.0), "fit_reg": (0.0, 10.0), "max_counts": (2.0, 1e12), "coeff_floor": (1e-8, 0.1),
        }
        for name, (lo, hi) in checks.items():
            value = getattr(self, name)
            if not (lo <= value <= hi):
                raise ValueError(f"ViewSpec.{name} must be in [{lo:g}, {hi:g}], got {value!r}")

    @property
    def coeff_shape(self) -> tuple[int, int, int]:
        """(C, N+1, K) of the coefficient view."""
        return (COEFF_CHANNELS, self.orders + 1, self.zeros)

    def to_dict(self) -> dict:
        """JSON-serialisable dictionary."""
        return asdict(self)

    def fields_for(self, view: str) -> dict:
        """The fields a ``view`` ("image", "coeff" or "joint") model depends on, as a dict."""
        used = {"image": IMAGE_FIELDS, "coeff": COEFF_FIELDS}.get(view, IMAGE_FIELDS + COEFF_FIELDS)
        return {name: getattr(self, name) for name in used}

    @classmethod
    def from_dict(cls, d: dict) -> "ViewSpec":
        """Inverse of :meth:`to_dict`; unknown keys are an error, missing ones take defaults."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"ViewSpec: unknown fields {sorted(unknown)} (known: {sorted(names)})")
        return cls(**d)


def area_weights(n_in: int, n_out: int) -> sp.csr_matrix:
    """(n_out, n_in) matrix of overlap lengths of output cells (width n_in / n_out) with input pixels."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    first = np.floor(lo).astype(int)
    cols = first + np.arange(int(np.ceil(n_in / n_out)) + 1)[None, :]
    overlap = np.clip(np.minimum(hi, cols + 1) - np.maximum(lo, cols), 0, None)
    keep = (overlap > 1e-12) & (cols < n_in)
    rows = np.broadcast_to(np.arange(n_out)[:, None], cols.shape)
    return sp.csr_matrix((overlap[keep], (rows[keep], cols[keep])), shape=(n_out, n_in))


class ViewMaker:
    """Set up once per geometry (and static mask); call on counts to get both views."""

    def __init__(self, spec: ViewSpec, geometry: Geometry, mask: np.ndarray | None = None) -> None:
        self.spec, self.geometry = spec, geometry
        H, W = geometry.shape
        if mask is not None and np.shape(mask) != (H, W):
            raise ValueError(f"ViewMaker: mask shape {np.shape(mask)} differs from the geometry's {(H, W)}")
        self.mask = None if mask is None else np.asarray(mask, dtype=bool)
        side = max(H, W)
        self.block = math.ceil(side / spec.fb_size)
        self.side = self.block * math.ceil(side / self.block)  # padded square, a multiple of the block
        self.top, self.left = (self.side - H) // 2, (self.side - W) // 2
        cx, cy = geometry.beam_center
        padded = Geometry((self.side, self.side), (cx + self.left, cy + self.top), geometry.pixel_size,
                          geometry.distance, geometry.energy)
        work = self.side // self.block
        self.work_geometry = padded.resized((work, work))
        # farthest corner of the unpadded frame, in working pixels (corner pixel centres)
        f = 1.0 / self.block
        wx, wy = self.work_geometry.beam_center
        xs = (np.array([self.left, self.left + W - 1]) + 0.5) * f - 0.5
        ys = (np.array([self.top, self.top + H - 1]) + 0.5) * f - 0.5
        corner = np.hypot(xs[:, None] - wx, ys[None, :] - wy).max()
        self.radius = spec.radius_scale * max(corner, 2.0)
        self.fb = FourierBessel((work, work), (wx, wy), self.radius, spec.orders, spec.zeros)
        self.to_image = area_weights(self.side, spec.input_size)  # (S, side), rows and columns alike
        self.to_work = area_weights(self.side, work)  # block sums
        self._log_max = math.log1p(spec.max_counts)
        if self.mask is not None or not self.fb.disk_in_frame:
            self(np.zeros((H, W), np.float32))  # factorise the fit for the static mask now

    def _valid(self, counts: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """Valid pixels: finite, non-negative, allowed by the static and the per-call mask."""
        valid = np.ones(counts.shape, bool) if counts.dtype.kind in "ub" else counts >= 0  # NaN >= 0 is False
        for m in (self.mask, mask):
            if m is not None:
                valid &= m
        return valid

    def _pad(self, a: np.ndarray) -> np.ndarray:
        """(H, W) -> (side, side), centred, zero-filled (False for masks)."""
        H, W = a.shape
        if a.shape == (self.side, self.side):
            return a
        out = np.zeros((self.side, self.side), a.dtype)
        out[self.top : self.top + H, self.left : self.left + W] = a
        return out

    def __call__(self, counts: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """counts (H, W) -> (image float32 (1, S, S), coeff float32 (3, N+1, K))."""
        total, weight = self._prepare(counts, mask)
        return self._image(total, weight), self.channels(self._fourier_bessel(total, weight)[2])

    def fourier_bessel(self, counts: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """counts (H, W) -> (working log-scaled frame, its validity, complex coefficients a (N+1, K))."""
        return self._fourier_bessel(*self._prepare(counts, mask))

    def channels(self, a: np.ndarray) -> np.ndarray:
        """Complex (N+1, K) coefficients -> float32 (3, N+1, K) network input (module docstring)."""
        c = a / (math.sqrt(math.pi) * self.radius)
        eps = self.spec.coeff_floor
        m = np.log1p(np.abs(c) / eps) / math.log1p(1 / eps)
        phase = np.angle(c)
        return np.stack([m, m * np.cos(phase), m * np.sin(phase)]).astype(np.float32)

    def _prepare(self, counts: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Padded square of valid counts (zero elsewhere) and of validity weights, float32."""
        counts = np.asarray(counts)
        if counts.shape != self.geometry.shape:
            raise ValueError(f"ViewMaker: counts shape {counts.shape} differs from the geometry's {self.geometry.shape}")
        if mask is not None and np.shape(mask) != counts.shape:
            raise ValueError(f"ViewMaker: mask shape {np.shape(mask)} differs from counts shape {counts.shape}")
        valid = self._valid(counts, mask)
        total = np.where(valid, counts, 0).astype(np.float32, copy=False)
        return self._pad(total), self._pad(valid.astype(np.float32))

    @staticmethod
    def _area_sum(a: np.ndarray, weights: sp.csr_matrix) -> np.ndarray:
        """weights @ a @ weights.T: sums of ``a`` over the output cells, (side, side) -> (n, n)."""
        return np.asarray(weights @ np.ascontiguousarray((weights @ a).T)).T

    def _image(self, total: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Area-averaged, log-scaled (1, S, S) image view."""
        return self._log(self._area_sum(total, self.to_image), self._area_sum(weight, self.to_image))[None]

    def _log(self, total: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """log1p(total / weight) / log1p(max_counts) as float32, 0 where weight is ~0."""
        ok = weight > 1e-6
        mean = np.divide(total, weight, out=np.zeros_like(total), where=ok)
        return (np.log1p(np.clip(mean, 0, None)) / self._log_max).astype(np.float32)

    def _fourier_bessel(self, total: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Block-average, log-scale and expand: (working frame, validity, a)."""
        t, w = self._area_sum(total, self.to_work), self._area_sum(weight, self.to_work)
        frame, valid = self._log(t, w), w > 0
        return frame, valid, self.fb.transform(frame, mask=valid, reg=self.spec.fit_reg)
