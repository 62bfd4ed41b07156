"""A catalogue of real X-ray area detectors, as data, and how each reads out a frame.

Each row of ``detectors.tsv`` (:data:`TABLE`) is one detector: native shape (rows x cols),
square pixel size,
module layout (module rows x cols and the gaps between modules, as in pyFAI's detector
classes, which the tests check it against), active area (the whole rectangle, or the
inscribed circle of round CCDs and image plates), how invalid pixels are marked in the
files it writes, its counter limit, and the setups it is used in.

Invalid-pixel marking (:meth:`DetectorModel.raw`):

* ``negative``: Pilatus, int32; module gaps -1, bad pixels -2;
* ``all bits``: Eiger, uint32; gaps and bad pixels 2^32 - 1;
* ``mask``: CCDs, flat panels, image plates; uint16 or uint32, nothing marked in the
  frame (0 there); the invalid pixels come as a separate pixel mask.

Readout (``counting``): photon-counting detectors (Pilatus, Eiger) give Poisson photon
counts; integrating ones (CCDs, flat panels, image plates) give gain x photons + offset +
Gaussian read noise in ADU, clipped at their counter limit.

A frame of the simulator holds the detector resampled by one factor ``f`` (a frame pixel
is ``f`` native pixels a side, so its pixel size is ``f`` times the native one), placed in
the frame at an offset; frame pixels outside the detector are invalid. A frame pixel is
invalid when more than half of it falls on a module gap or outside the active area.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import numpy as np

from scattertag.geometry import REFERENCE_PIXEL_SIZE

#: The catalogue table (tab-separated, one detector a row): name, family, shape (rows x
#: cols), pixel (um), module (rows x cols), gap (rows x cols), active area, invalid
#: marking, raw dtype, counter limit, setups, pyFAI name ("-": none). Sources: pyFAI's
#: detector classes (shapes, pixel sizes, module layouts, masks) and the manufacturers'
#: data sheets (flat panels, CCD binning modes, counter depths).
TABLE = files("scattertag.simulate").joinpath("detectors.tsv").read_text()

#: Largest frame pixel (m): in smaller frames a detector is cropped rather than shrunk.
MAX_PIXEL = 5e-3
#: Families whose pixels integrate charge (ADU = gain x photons + offset + read noise).
INTEGRATING = ("ccd", "flat panel", "image plate")
#: Value of an invalid pixel in the raw frame, per marking.
MARKS = {"negative": (-1, -2), "all bits": (2**32 - 1, 2**32 - 1), "mask": (0, 0)}


def _pair(text: str) -> tuple[int, int]:
    """'195x487' -> (195, 487)."""
    a, b = text.split("x")
    return int(a), int(b)


@dataclass(frozen=True)
class DetectorModel:
    """One detector of the catalogue (native pixels)."""

    name: str
    family: str  # pilatus, eiger, ccd, flat panel, image plate
    shape: tuple[int, int]  # native (rows, cols)
    pixel_size: float  # m
    module: tuple[int, int]  # module (rows, cols)
    gap: tuple[int, int]  # gap between modules (rows, cols), pixels
    active: str  # "rectangle" or "circle" (inscribed)
    invalid: str  # "negative", "all bits" or "mask"
    dtype: str  # numpy dtype of the frames it writes
    limit: int  # counter limit (saturation), counts or ADU
    setups: tuple[str, ...]  # "saxs", "waxs"
    pyfai: str | None  # pyFAI detector name, where pyFAI has it

    @property
    def counting(self) -> bool:
        """True for photon-counting detectors (Poisson counts, no offset or read noise)."""
        return self.family not in INTEGRATING

    def gap_lines(self, n: int, axis: int) -> np.ndarray:
        """(n,) bool along rows (axis 0) or cols (axis 1): True on a module gap."""
        period = self.module[axis] + self.gap[axis]
        return (np.arange(n) % period) >= self.module[axis]

    def native_mask(self) -> np.ndarray:
        """(rows, cols) bool, True on invalid native pixels (gaps, outside the active area).

        pyFAI's convention (``calc_mask``: nonzero = masked), checked against it in tests.
        """
        rows, cols = self.shape
        mask = self.gap_lines(rows, 0)[:, None] | self.gap_lines(cols, 1)[None, :]
        if self.active == "circle":
            y, x = np.ogrid[:rows, :cols]
            radius = 0.5 * min(rows, cols)
            mask = mask | (np.hypot(y + 0.5 - rows / 2, x + 0.5 - cols / 2) > radius)
        return mask

    def raw(self, counts: np.ndarray, gaps: np.ndarray, bad: np.ndarray) -> np.ndarray:
        """The frame as this detector writes it: counts in its dtype, invalid pixels marked.

        ``gaps`` and ``bad`` are bool (rows, cols): module gaps / area outside the detector,
        and bad (dead) pixels.
        """
        frame = np.minimum(counts, np.iinfo(self.dtype).max).astype(self.dtype)
        gap_value, bad_value = MARKS[self.invalid]
        frame[gaps] = gap_value
        frame[bad] = bad_value
        return frame


def _parse(table: str) -> dict[str, DetectorModel]:
    """The catalogue rows of ``table`` by name."""
    models = {}
    for line in table.strip().splitlines()[1:]:
        cells = [c.strip() for c in line.split("\t")]
        name, family, shape, pixel, module, gap, active, invalid, dtype, limit, setups, pyfai = (
            cells
        )
        models[name] = DetectorModel(
            name=name,
            family=family,
            shape=_pair(shape),
            pixel_size=float(pixel) * 1e-6,
            module=_pair(module),
            gap=_pair(gap),
            active=active,
            invalid=invalid,
            dtype=dtype,
            limit=int(limit),
            setups=tuple(setups.split()),
            pyfai=None if pyfai == "-" else pyfai,
        )
    return models


#: The catalogue: name -> DetectorModel.
CATALOGUE: dict[str, DetectorModel] = _parse(TABLE)

#: The reference detector of the first version (Recipe(detectors="reference")): a
#: Pilatus-like 1000 x 1000 frame of 75 um pixels, counts clipped at 2^24 - 1.
REFERENCE_MODEL = DetectorModel(
    "reference",
    "pilatus",
    (1000, 1000),
    REFERENCE_PIXEL_SIZE,
    (1000, 1000),
    (0, 0),
    "rectangle",
    "negative",
    "int32",
    2**24 - 1,
    ("saxs",),
    None,
)


def _invalid_fraction(lines: np.ndarray, factor: float, count: int) -> np.ndarray:
    """(count,) fraction of each frame pixel (``factor`` native pixels wide) lying on ``lines``."""
    cumulative = np.concatenate([[0.0], np.cumsum(lines, dtype=np.float64)])
    edges = np.minimum(np.arange(count + 1) * factor, len(lines))
    covered = np.interp(edges, np.arange(len(lines) + 1), cumulative)
    return np.diff(covered) / factor


@lru_cache(maxsize=32)
def frame_gaps(name: str, shape: tuple[int, int], factor: float) -> np.ndarray:
    """(rows, cols) bool: True where a frame pixel of ``factor`` native pixels is invalid.

    ``shape`` is the detector's extent in frame pixels, about native shape / factor; a
    pixel is invalid when more than half of it is on a gap or outside the active area.
    Cached (read-only): experiments of one detector and frame size share it.
    """
    model = CATALOGUE[name]
    rows, cols = shape
    gap_rows = _invalid_fraction(model.gap_lines(model.shape[0], 0), factor, rows) > 0.5
    gap_cols = _invalid_fraction(model.gap_lines(model.shape[1], 1), factor, cols) > 0.5
    mask = gap_rows[:, None] | gap_cols[None, :]
    if model.active == "circle":
        y, x = np.ogrid[:rows, :cols]
        radius = 0.5 * min(model.shape) / factor
        centre_y, centre_x = model.shape[0] / (2 * factor), model.shape[1] / (2 * factor)
        mask = mask | (np.hypot(y + 0.5 - centre_y, x + 0.5 - centre_x) > radius)
    mask.setflags(write=False)
    return mask


@dataclass(frozen=True)
class Placement:
    """Where a detector sits in a frame: resampling factor and offset, in frame pixels."""

    factor: float  # native pixels per frame pixel (a side)
    extent: tuple[int, int]  # the detector's (rows, cols) in frame pixels
    offset: tuple[int, int]  # (row, col) of its first pixel in the frame

    def to_dict(self) -> dict:
        """JSON-friendly dictionary."""
        return {"factor": self.factor, "extent": list(self.extent), "offset": list(self.offset)}


def place(model: DetectorModel, frame: tuple[int, int], where: tuple[float, float]) -> Placement:
    """Fit ``model`` into a frame of ``frame`` (rows, cols): one factor, the longer side fills.

    ``where`` (fractions in [0, 1]) places the detector in the room left over (rows, cols).
    In tiny frames, where a frame pixel would exceed MAX_PIXEL, the factor stops there and
    the frame shows a window of the detector instead (``where`` places the window).
    """
    rows, cols = frame
    factor = max(model.shape[0] / rows, model.shape[1] / cols)
    factor = min(factor, MAX_PIXEL / model.pixel_size)
    extent = (max(round(model.shape[0] / factor), 1), max(round(model.shape[1] / factor), 1))
    offset = (round(where[0] * (rows - extent[0])), round(where[1] * (cols - extent[1])))
    return Placement(float(factor), extent, offset)


def detector_mask(model: DetectorModel, frame: tuple[int, int], placement: Placement) -> np.ndarray:
    """(rows, cols) bool of the frame, True on gaps and outside the detector."""
    mask = np.ones(frame, dtype=bool)
    gaps = frame_gaps(model.name, placement.extent, placement.factor)
    (r0, c0), (rows, cols) = placement.offset, placement.extent
    top, left = max(r0, 0), max(c0, 0)
    bottom, right = min(r0 + rows, frame[0]), min(c0 + cols, frame[1])
    mask[top:bottom, left:right] = gaps[top - r0 : bottom - r0, left - c0 : right - c0]
    return mask
