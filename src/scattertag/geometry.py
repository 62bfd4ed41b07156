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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from scattertag.cache import BoundedCache
from scattertag.io.files import write_text
from scattertag.io.masks import mask_digest

#: h c in keV Angstrom: lambda[A] = HC_KEV_A / E[keV].
HC_KEV_A = 12.398419843320026

#: The reference detector: the simulator's, and the default for what a file does not say.
REFERENCE_PIXEL_SIZE = 75e-6  # metres
REFERENCE_DISTANCE = 0.594  # metres
REFERENCE_ENERGY = 8.8984  # keV


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
    pixel_size: float = REFERENCE_PIXEL_SIZE
    distance: float = REFERENCE_DISTANCE
    energy: float = REFERENCE_ENERGY

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
            pixel_size=d.get("pixel_size", REFERENCE_PIXEL_SIZE),
            distance=d.get("distance", REFERENCE_DISTANCE),
            energy=d.get("energy", REFERENCE_ENERGY),
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


# ---- what the user, a PONI file or a file header says ---------------------------------
@dataclass(frozen=True)
class DetectorValues:
    """What one source (the user, a PONI file, a file header) says of a geometry; None: silent.

    beam_center : (x, y) pixels; pixel_size, distance : metres; energy : keV.
    """

    beam_center: tuple[float, float] | None = None
    pixel_size: float | None = None
    distance: float | None = None
    energy: float | None = None

    @classmethod
    def from_poni(cls, path: str | Path) -> DetectorValues:
        """The values of a pyFAI PONI file (its direct-beam centre, pixel, distance, energy)."""
        g = Geometry.from_poni(path, shape=(1, 1))  # the shape comes from each frame
        return cls(g.beam_center, g.pixel_size, g.distance, g.energy)


_PONI_FILES: BoundedCache[DetectorValues] = BoundedCache(16)
_PONI_MASKS: BoundedCache[np.ndarray | None] = BoundedCache(4)


def _poni_values(path: str) -> DetectorValues:
    """DetectorValues.from_poni(path), read once per version of the file."""
    stamp = Path(path).stat().st_mtime_ns if Path(path).is_file() else None
    return _PONI_FILES.get((path, stamp), lambda: DetectorValues.from_poni(path))


def poni_detector_valid(path: str | Path) -> np.ndarray | None:
    """(rows, cols) bool valid pixels of a PONI file's detector (pyFAI's mask of its module
    gaps and bad pixels, nonzero = excluded), or None when the detector has no mask."""
    import pyFAI

    def load() -> np.ndarray | None:
        mask = pyFAI.load(str(path)).detector.mask
        return None if mask is None or not np.any(mask) else np.asarray(mask) == 0

    stamp = Path(path).stat().st_mtime_ns if Path(path).is_file() else None
    return _PONI_MASKS.get((str(path), stamp), load)


class MissingBeamCenter(ValueError):
    """No source gives a beam centre for a frame."""


def resolve_geometry(
    shape: tuple[int, int], sources: Sequence[tuple[str, DetectorValues | None]]
) -> tuple[Geometry, str]:
    """The Geometry of a frame from ``(name, values)`` sources, first = strongest; and the name
    of the source of its beam centre. Values no source gives take the reference detector's.
    """
    given = [(name, v) for name, v in sources if v is not None]

    def first(attr: str, default: float) -> float:
        return next((getattr(v, attr) for _, v in given if getattr(v, attr) is not None), default)

    origin = next(((name, v.beam_center) for name, v in given if v.beam_center is not None), None)
    if origin is None:
        raise MissingBeamCenter(
            "no beam centre: give one (--beam-center X Y, a manifest's beam_x/beam_y) or a PONI "
            "file; the file's header has none"
        )
    geometry = Geometry(
        shape,
        origin[1],
        first("pixel_size", REFERENCE_PIXEL_SIZE),
        first("distance", REFERENCE_DISTANCE),
        first("energy", REFERENCE_ENERGY),
    )
    return geometry, origin[0]


def _number(name: str, value: object) -> float | None:
    """A user value (number or text) as a finite float; blank -> None; ValueError naming it."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


@dataclass(frozen=True, eq=False)
class GeometryOptions:
    """What the user gives about the geometry of the frames to tag (command line, manifest, API).

    The one place where user values become a :class:`Geometry` (:meth:`resolve`); anything
    left None comes from a PONI file, the file's header or the reference detector.

    beam_center : (x, y) pixels, x = column, y = row, (0, 0) the centre of the first pixel.
    poni : pyFAI PONI file. mask : mask file (nonzero = excluded) or a bool array
        (nonzero = excluded, as in the file). pixel_size, distance : metres; energy : keV.
    frame : the one frame of multi-frame files to tag (None: all).
    dummy, delta_dummy : pixels with ``|counts - dummy| <= delta_dummy`` are invalid (pyFAI).
    """

    beam_center: tuple[float, float] | None = None
    poni: str | None = None
    mask: object = None  # str | numpy.ndarray | None
    pixel_size: float | None = None
    distance: float | None = None
    energy: float | None = None
    frame: int | None = None
    dummy: float | None = None
    delta_dummy: float | None = None
    _poni_values: DetectorValues | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.beam_center is not None:
            if isinstance(self.beam_center, str) or len(self.beam_center) != 2:
                raise ValueError(
                    f"beam_center must be two numbers (x, y) in pixels, got {self.beam_center!r}"
                )
            x, y = (_number(n, v) for n, v in zip(("beam_x", "beam_y"), self.beam_center))
            if x is None or y is None:
                raise ValueError(f"beam centre is incomplete: {self.beam_center!r}")
            object.__setattr__(self, "beam_center", (x, y))
        if self.frame is not None:
            if self.frame != int(self.frame) or self.frame < 0:
                raise ValueError(f"frame must be an integer >= 0, got {self.frame}")
            object.__setattr__(self, "frame", int(self.frame))
        resolve_geometry((1, 1), [("given", self.given), ("", DetectorValues((0.0, 0.0)))])
        if self.poni is not None:
            object.__setattr__(self, "poni", str(self.poni))
            object.__setattr__(self, "_poni_values", _poni_values(self.poni))

    @classmethod
    def from_user(
        cls,
        beam_center: Sequence[object] | None = None,
        poni: str | Path | None = None,
        mask: object = None,
        pixel_size_um: object = None,
        distance_m: object = None,
        energy_kev: object = None,
        frame: object = None,
        dummy: object = None,
        delta_dummy: object = None,
    ) -> GeometryOptions:
        """Options from user units (micrometres, metres, keV), as numbers or text; blank = None."""
        pixel_um = _number("pixel_size_um", pixel_size_um)
        frame_number = _number("frame", frame)
        if beam_center is not None and not isinstance(beam_center, str):
            beam_center = tuple(beam_center)
        return cls(
            beam_center=beam_center,  # type: ignore[arg-type]
            poni=None if poni is None else str(poni),
            mask=str(mask) if isinstance(mask, (str, Path)) else mask,
            pixel_size=None if pixel_um is None else pixel_um * 1e-6,
            distance=_number("distance_m", distance_m),
            energy=_number("energy_kev", energy_kev),
            frame=frame_number,  # type: ignore[arg-type]  # __post_init__ checks it is an integer
            dummy=_number("dummy", dummy),
            delta_dummy=_number("delta_dummy", delta_dummy),
        )

    @property
    def given(self) -> DetectorValues:
        """The values given directly (not through a PONI file)."""
        return DetectorValues(self.beam_center, self.pixel_size, self.distance, self.energy)

    @property
    def values(self) -> DetectorValues:
        """The values given directly, completed by the PONI file's (None where neither says)."""
        poni = self._poni_values or DetectorValues()
        return DetectorValues(
            *(
                getattr(self, name) if getattr(self, name) is not None else getattr(poni, name)
                for name in ("beam_center", "pixel_size", "distance", "energy")
            )
        )

    def filled_from(self, default: GeometryOptions) -> GeometryOptions:
        """These options, with what they leave None taken from ``default``."""
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        return replace(default, **{k: v for k, v in own.items() if v is not None})

    @property
    def key(self) -> tuple:
        """A hashable summary, equal for options giving every frame the same geometry and mask."""
        mask = self.mask
        if isinstance(mask, np.ndarray):
            mask = mask_digest(mask != 0)
        return (
            self.beam_center,
            self.poni,
            mask,
            self.pixel_size,
            self.distance,
            self.energy,
            self.dummy,
            self.delta_dummy,
        )

    def knows_scale(self, *more: tuple[str, DetectorValues | None]) -> bool:
        """True if pixel size, distance and energy all come from a source (given, the PONI file
        or ``more``, e.g. the file's header), none from the reference detector's defaults: the
        frame's q scale is known (a "qcake" view is then in q, else in frame units)."""
        sources = [self.given, self._poni_values, *(values for _, values in more)]
        return all(
            any(v is not None and getattr(v, name) is not None for v in sources)
            for name in ("pixel_size", "distance", "energy")
        )

    @property
    def has_beam_center(self) -> bool:
        """True if a beam centre is given, directly or by the PONI file."""
        return self.beam_center is not None or self._poni_values is not None

    def resolve(
        self, shape: tuple[int, int], *more: tuple[str, DetectorValues | None]
    ) -> tuple[Geometry, str]:
        """The Geometry of a frame of ``shape``: given values > PONI file > ``more`` sources
        (in order, e.g. the file's header); returns it and where its beam centre came from
        ('given', 'poni' or a name in ``more``). MissingBeamCenter if none gives one."""
        return resolve_geometry(shape, [("given", self.given), ("poni", self._poni_values), *more])
