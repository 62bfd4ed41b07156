"""Real detector frames bundled with the package, with their geometry (``frames.tsv``).

Six measured Pilatus frames (SAXS, GISAXS, WAXS, calibrants) for trying the tagger on a fresh
clone; sources and licences are in ``README.md`` and ``LICENSES.md`` beside this file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

#: Folder holding the frames, ``frames.tsv``, ``README.md`` and ``LICENSES.md``.
EXAMPLES_DIR = Path(__file__).resolve().parent
#: Table of the bundled frames: file, beam_x, beam_y, pixel_size_um, licence, description.
FRAMES_TABLE = EXAMPLES_DIR / "frames.tsv"


@dataclass(frozen=True)
class ExampleFrame:
    """One bundled frame: its file, beam centre (x = column, y = row; pixels), pixel size (um)."""

    path: Path
    beam_center: tuple[float, float]
    pixel_size_um: float
    description: str
    licence: str


def example_frames() -> list[ExampleFrame]:
    """The bundled frames in the order of ``frames.tsv``."""
    with open(FRAMES_TABLE, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [
        ExampleFrame(
            path=EXAMPLES_DIR / row["file"],
            beam_center=(float(row["beam_x"]), float(row["beam_y"])),
            pixel_size_um=float(row["pixel_size_um"]),
            description=row["description"],
            licence=row["licence"],
        )
        for row in rows
    ]
