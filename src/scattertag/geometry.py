"""Flat-detector scattering geometry with cached q and azimuth maps.

Conventions (used everywhere in scattertag):

* Arrays are indexed ``[row, col]``; ``shape = (rows, cols)``.
* Beam centre ``(x, y)`` in pixels: ``x`` along columns, ``y`` along rows, ``(0, 0)`` the
  centre of the first pixel. It may lie outside the frame.
* ``q = 4 pi sin(theta) / lambda`` in 1/Angstrom, with ``2 theta`` the scattering angle
  of a pixel centre on a detector normal to the beam at ``distance`` metres.
* ``chi = atan2(y - cy, x - cx)`` in radians, in (-pi, pi]: 0 along +x (columns),
  pi/2 along +y (rows). The Fourier-Bessel features use the same angle.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from scattertag.io.files import write_text

#: h c in keV Angstrom: lambda[A] = HC_KEV_A / E[keV].
HC_KEV_A = 12.398419843320026


@dataclass(frozen=True)
class Geometry:
    """A flat detector normal to the beam.

    Attributes
    ----------
    shape : (rows, cols) of the frame.
    beam_center : (x, y) in pixels; may be outside the frame.
    pixel_size : pixel edge in metres (square pixels).
    distance : sample-detector distance in metres.
    energy : photon energy in keV.
    """

    shape: tuple[int, int]
    beam_center: tuple[float, float]
    pixel_size: float = 75e-6
    distance: float = 0.594
    energy: float = 8.8984

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"shape must be two positive integers (rows, cols), got {self.shape}")
        object.__setattr__(self, "shape", shape)
        cx, cy = (float(v) for v in self.beam_center)
        if not (math.isfinite(cx) and math.isfinite(cy)):
            raise ValueError(f"beam_center must be finite numbers (x, y), got {self.beam_center}")
        object.__setattr__(self, "beam_center", (cx, cy))
        for name, lo, hi in (
            ("pixel_size", 1e-7, 1e-2),
            ("distance", 1e-3, 100.0),
            ("energy", 0.1, 500.0),
        ):
            value = float(getattr(self, name))
            if not (lo <= value <= hi):
                raise ValueError(f"{name} must be in [{lo:g}, {hi:g}], got {value!r}")
            object.__setattr__(self, name, value)

    # ---- derived scalars -------------------------------------------------------------
    @property
    def wavelength(self) -> float:
        """X-ray wavelength in Angstrom."""
        return HC_KEV_A / self.energy

    @property
    def beam_on_frame(self) -> bool:
        """True if the beam centre falls on the detector (inside the frame)."""
        cx, cy = self.beam_center
        rows, cols = self.shape
        return -0.5 <= cx < cols - 0.5 and -0.5 <= cy < rows - 0.5

    def q_of_radius(self, r_pixels: np.ndarray | float) -> np.ndarray | float:
        """q (1/A) at a distance ``r_pixels`` from the beam centre on the detector."""
        two_theta = np.arctan(np.asarray(r_pixels) * self.pixel_size / self.distance)
        return 4.0 * np.pi * np.sin(two_theta / 2.0) / self.wavelength

    def radius_of_q(self, q: np.ndarray | float) -> np.ndarray | float:
        """Radius in pixels at which scattering vector ``q`` (1/A) lands; inverse of q_of_radius."""
        s = np.asarray(q) * self.wavelength / (4.0 * np.pi)
        if np.any(s >= 1.0):
            raise ValueError(f"q = {np.max(q):g} 1/A is beyond the Ewald limit 4 pi / lambda")
        return self.distance * np.tan(2.0 * np.arcsin(s)) / self.pixel_size

    @property
    def q_max(self) -> float:
        """Largest q (1/A) on the frame (at the corner farthest from the beam centre)."""
        return float(self.q_of_radius(self.corner_distances().max()))

    def corner_distances(self) -> np.ndarray:
        """Distances (pixels) from the beam centre to the four frame corners (pixel centres)."""
        cx, cy = self.beam_center
        rows, cols = self.shape
        xs = np.array([0, cols - 1, 0, cols - 1], dtype=float)
        ys = np.array([0, 0, rows - 1, rows - 1], dtype=float)
        return np.hypot(xs - cx, ys - cy)

    # ---- cached maps (float32 to keep 2000 x 2000 maps at 16 MB each) ----------------
    @cached_property
    def _offsets(self) -> tuple[np.ndarray, np.ndarray]:
        cx, cy = self.beam_center
        rows, cols = self.shape
        dx = (np.arange(cols, dtype=np.float64) - cx)[None, :]
        dy = (np.arange(rows, dtype=np.float64) - cy)[:, None]
        return dx, dy

    @cached_property
    def r_map(self) -> np.ndarray:
        """(rows, cols) float32 distance of each pixel centre from the beam centre, pixels."""
        dx, dy = self._offsets
        return np.hypot(dx, dy).astype(np.float32)

    @cached_property
    def q_map(self) -> np.ndarray:
        """(rows, cols) float32 scattering vector magnitude q, 1/A."""
        return np.asarray(self.q_of_radius(self.r_map.astype(np.float64)), dtype=np.float32)

    @cached_property
    def chi_map(self) -> np.ndarray:
        """(rows, cols) float32 azimuth chi = atan2(y - cy, x - cx), radians."""
        dx, dy = self._offsets
        return np.arctan2(dy, dx).astype(np.float32)

    # ---- transformations -------------------------------------------------------------
    def resized(self, shape: tuple[int, int]) -> Geometry:
        """The same detector area sampled on ``shape`` pixels (pixel size scales).

        The physics in q is unchanged: only the sampling is. Requires the same aspect
        ratio (within one pixel).
        """
        rows, cols = self.shape
        new_rows, new_cols = (int(s) for s in shape)
        fy, fx = new_rows / rows, new_cols / cols
        if abs(fy - fx) * max(rows, cols) > 1.0:
            raise ValueError(f"resized: aspect ratio of {shape} differs from {self.shape}")
        f = fx
        cx, cy = self.beam_center
        # pixel centres: x_new + 0.5 = f (x_old + 0.5)
        return replace(
            self,
            shape=(new_rows, new_cols),
            beam_center=((cx + 0.5) * f - 0.5, (cy + 0.5) * f - 0.5),
            pixel_size=self.pixel_size / f,
        )

    # ---- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-serialisable dictionary (lists for tuples)."""
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["beam_center"] = list(self.beam_center)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Geometry:
        """Inverse of :meth:`to_dict`."""
        return cls(
            shape=tuple(d["shape"]),
            beam_center=tuple(d["beam_center"]),
            pixel_size=d.get("pixel_size", 75e-6),
            distance=d.get("distance", 0.594),
            energy=d.get("energy", 8.8984),
        )

    def to_poni(self, path: str | Path) -> Path:
        """Write a pyFAI PONI file (version 2, no rotations).

        pyFAI puts the origin at the corner of the first pixel, so the point of normal
        incidence is ``poni1 = (cy + 0.5) * pixel``, ``poni2 = (cx + 0.5) * pixel``.
        """
        cx, cy = self.beam_center
        config = {
            "pixel1": self.pixel_size,
            "pixel2": self.pixel_size,
            "max_shape": list(self.shape),
        }
        text = "\n".join(
            [
                "# Nota: C-Order, 1 refers to the Y axis, 2 to the X axis",
                "# Written by scattertag",
                "poni_version: 2",
                "Detector: Detector",
                f"Detector_config: {json.dumps(config)}",
                f"Distance: {self.distance!r}",
                f"Poni1: {(cy + 0.5) * self.pixel_size!r}",
                f"Poni2: {(cx + 0.5) * self.pixel_size!r}",
                "Rot1: 0.0",
                "Rot2: 0.0",
                "Rot3: 0.0",
                f"Wavelength: {self.wavelength * 1e-10!r}",
                "",
            ]
        )
        return write_text(path, text)

    @classmethod
    def from_poni(cls, path: str | Path, shape: tuple[int, int] | None = None) -> Geometry:
        """Read a pyFAI PONI file through pyFAI itself.

        ``shape`` overrides the detector's ``max_shape`` (needed for detectors that do
        not record one). Tilted detectors (non-zero rot1/rot2) are reduced to their
        direct-beam centre, which is what the features use; the small tilt is dropped.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: PONI file not found")
        import pyFAI  # local import: pyFAI is slow to import and only needed here

        try:
            ai = pyFAI.load(str(path))
        except Exception as exc:  # pyFAI raises many types on malformed files
            raise ValueError(f"{path}: not a readable PONI file ({exc})") from exc
        pixel1, pixel2 = ai.detector.pixel1, ai.detector.pixel2
        if not pixel1 or not pixel2:
            raise ValueError(f"{path}: PONI file has no pixel size")
        if abs(pixel1 - pixel2) / max(pixel1, pixel2) > 1e-3:
            raise ValueError(f"{path}: non-square pixels ({pixel1} x {pixel2} m) are not supported")
        if shape is None:
            shape = ai.detector.max_shape
            if shape is None:
                raise ValueError(f"{path}: detector has no shape; pass shape=(rows, cols)")
        if ai.wavelength is None:
            raise ValueError(f"{path}: PONI file has no wavelength")
        f2d = ai.getFit2D()  # direct-beam centre in pixels, origin at the first pixel's corner
        return cls(
            shape=tuple(shape),
            beam_center=(f2d["centerX"] - 0.5, f2d["centerY"] - 0.5),
            pixel_size=float(pixel1),
            distance=float(f2d["directDist"]) * 1e-3,
            energy=HC_KEV_A / (ai.wavelength * 1e10),
        )
