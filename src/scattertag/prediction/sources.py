"""What to tag: files from the command line or a manifest CSV, each with geometry and mask.

A :class:`Setup` is a detector geometry without a frame shape (beam centre, pixel size,
distance, energy); the shape comes from the file when it is read. A problem with one row
of a manifest (a beam centre given as text, say) becomes that item's ``error`` so the run
goes on; a problem with the manifest as a whole raises :class:`ManifestError`.

Manifest columns: ``path`` (relative to the manifest's folder, or absolute; may end in
``::/dataset``), ``beam_x``, ``beam_y`` (pixels: x = column, y = row, (0, 0) the centre of
the first pixel), and optionally ``mask`` (image file, nonzero = excluded), ``frame``,
``pixel_size_um``, ``distance_m``, ``energy_kev``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from scattertag.geometry import Geometry
from scattertag.io.readers import split_source

#: Geometry used when a file's own values are not given: the reference simulator's detector.
DEFAULT_PIXEL_SIZE_UM = 75.0
DEFAULT_DISTANCE_M = 0.594
DEFAULT_ENERGY_KEV = 8.8984

MANIFEST_COLUMNS = (
    "path",
    "beam_x",
    "beam_y",
    "mask",
    "frame",
    "pixel_size_um",
    "distance_m",
    "energy_kev",
)


class ManifestError(ValueError):
    """A manifest that cannot be used at all (missing file or required column)."""


@dataclass(frozen=True)
class Setup:
    """A flat detector's geometry without the frame shape; SI units as in Geometry."""

    beam_center: tuple[float, float]
    pixel_size: float = DEFAULT_PIXEL_SIZE_UM * 1e-6
    distance: float = DEFAULT_DISTANCE_M
    energy: float = DEFAULT_ENERGY_KEV

    def __post_init__(self) -> None:
        self.geometry((1, 1))  # validates ranges, with Geometry's own messages

    def geometry(self, shape: tuple[int, int]) -> Geometry:
        """The Geometry of a frame of ``shape`` (rows, cols)."""
        return Geometry(shape, self.beam_center, self.pixel_size, self.distance, self.energy)


@dataclass(frozen=True)
class Item:
    """One file (or one frame of it) to tag.

    source : the file as the user named it (the ``path`` column of the output).
    location : the file to read, resolved, with any ``::/dataset``.
    frame : frame index, or None for every frame in the file.
    setup : the geometry; None only when ``error`` is set.
    mask : mask file (nonzero = excluded), or None.
    error : why this item cannot be tagged before even reading it ('' if it can).
    """

    source: str
    location: str
    frame: int | None = None
    setup: Setup | None = None
    mask: str | None = None
    error: str = ""


def number(name: str, text: object) -> float:
    """``text`` as a finite float; ValueError naming the parameter otherwise."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {text!r}")
    return value


def frame_index(text: object) -> int | None:
    """A frame column value: '' -> None (all frames), else an integer >= 0."""
    text = "" if text is None else str(text).strip()
    if not text:
        return None
    try:
        frame = int(text)
    except ValueError:
        raise ValueError(f"frame must be an integer >= 0, got {text!r}") from None
    if frame < 0:
        raise ValueError(f"frame must be an integer >= 0, got {frame}")
    return frame


def setup_from_values(
    beam_x: object,
    beam_y: object,
    pixel_size_um: object = None,
    distance_m: object = None,
    energy_kev: object = None,
    base: Setup | None = None,
) -> Setup:
    """A Setup from numbers or their text; blank values come from ``base``, else the defaults."""

    def blank(value: object) -> bool:
        return value is None or str(value).strip() == ""

    def value(name: str, text: object, fallback: float | None, scale: float = 1.0) -> float:
        if not blank(text):
            return number(name, text) * scale
        if fallback is None:
            raise ValueError(f"{name} is empty; give the beam centre in pixels")
        return fallback

    defaults = base or Setup((0.0, 0.0))
    beam = base.beam_center if base else (None, None)
    return Setup(
        beam_center=(value("beam_x", beam_x, beam[0]), value("beam_y", beam_y, beam[1])),
        pixel_size=value("pixel_size_um", pixel_size_um, defaults.pixel_size, 1e-6),
        distance=value("distance_m", distance_m, defaults.distance),
        energy=value("energy_kev", energy_kev, defaults.energy),
    )


def setup_from_poni(path: str | Path) -> Setup:
    """A Setup from a pyFAI PONI file (its direct-beam centre, pixel, distance, energy)."""
    g = Geometry.from_poni(path, shape=(1, 1))  # the shape comes from each file later
    return Setup(g.beam_center, g.pixel_size, g.distance, g.energy)


def items_from_paths(
    paths: list[str], setup: Setup, mask: str | None = None, frame: int | None = None
) -> list[Item]:
    """One Item per path given on the command line, all with the same geometry and mask."""
    return [
        Item(source=str(p), location=str(p), frame=frame, setup=setup, mask=mask) for p in paths
    ]


def read_manifest(
    path: str | Path, default: Setup | None = None, mask: str | None = None
) -> list[Item]:
    """Items from a manifest CSV; ``default`` and ``mask`` fill rows with no beam centre or mask."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = columns
        rows = list(reader)
    unknown = sorted(set(columns) - set(MANIFEST_COLUMNS))
    if unknown:
        raise ManifestError(
            f"{path}: unknown column(s) {unknown}; allowed: {', '.join(MANIFEST_COLUMNS)}"
        )
    need = ["path"] + ([] if default else ["beam_x", "beam_y"])
    missing = [c for c in need if c not in columns]
    if missing:
        raise ManifestError(
            f"{path}: missing column(s) {missing} (beam_x, beam_y needed unless a beam centre is given)"
        )
    return [
        _manifest_item(path, line, row, default, mask) for line, row in enumerate(rows, start=2)
    ]


def _manifest_item(
    manifest: Path, line: int, row: dict, default: Setup | None, mask: str | None
) -> Item:
    """The Item of one manifest row; bad values become its error, prefixed with where they are."""
    source = (row.get("path") or "").strip()
    file, dataset = split_source(source)
    location = str(manifest.parent / file) + (f"::{dataset}" if dataset else "")
    row_mask = (row.get("mask") or "").strip()
    errors, frame, setup = [] if source else ["path is empty"], None, None
    try:
        frame = frame_index(row.get("frame"))
    except ValueError as exc:
        errors.append(str(exc))
    try:
        values = {k: row.get(k) for k in MANIFEST_COLUMNS if k not in ("path", "mask", "frame")}
        setup = setup_from_values(**values, base=default)
    except ValueError as exc:
        errors.append(str(exc))
    error = f"{manifest.name} line {line}: {'; '.join(errors)}" if errors else ""
    mask = str(manifest.parent / row_mask) if row_mask else mask
    return Item(source=source, location=location, frame=frame, setup=setup, mask=mask, error=error)


def make_setup(
    beam_center: tuple[object, object] | None = None,
    poni: str | Path | None = None,
    pixel_size_um: object = None,
    distance_m: object = None,
    energy_kev: object = None,
) -> Setup | None:
    """The Setup given by a beam centre or a PONI file (not both), None if neither.

    Pixel size, distance and energy override the PONI file's values, or the defaults.
    """
    if beam_center is not None and poni is not None:
        raise ValueError("give either beam_center or poni, not both")
    if poni is not None:
        base = setup_from_poni(poni)
        return setup_from_values(None, None, pixel_size_um, distance_m, energy_kev, base=base)
    if beam_center is None:
        if any(v is not None for v in (pixel_size_um, distance_m, energy_kev)):
            raise ValueError(
                "pixel size, distance or energy given without a beam centre or PONI file"
            )
        return None
    if isinstance(beam_center, str) or len(beam_center) != 2:
        raise ValueError(f"beam_center must be two numbers (x, y) in pixels, got {beam_center!r}")
    return setup_from_values(*beam_center, pixel_size_um, distance_m, energy_kev)
