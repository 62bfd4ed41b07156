"""The labels table: detector files with geometry and hand-given tags (1, 0 or blank).

A TSV (``.tsv``, or any file whose header holds a tab) or CSV with one row per file, or
per frame of a multi-frame file:

    path (or local_path)   the file, relative to the table's folder or absolute; may end in
                           ``::/dataset`` (an HDF5 dataset)
    frame                  optional frame index (blank: every frame of the file, same tags)
    beam_x, beam_y, pixel_size_um, distance_m, energy_kev, mask
                           optional geometry, as in the predict manifest
    group                  optional sample or series name (frames of one group are never
                           split between training and held-out folds); default: the first
                           word of the file name (``sone_Hor_scan_Run5_...`` -> ``sone``)
    note, notes, comment   ignored
    every other column     a tag: 1 (present), 0 (absent), blank (unknown: excluded for that tag)

When a row has no beam centre it is taken from a centres table (``centres.tsv``: columns
``local_path`` or ``path``, ``beam_x``, ``beam_y``; other columns ignored), matched by the
path as written, then by file name. A row whose geometry or tag values cannot be used is
skipped with a message naming its line; the rest are kept. A file (and frame) listed twice
counts once, with its last line (the service appends corrections).
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from scattertag.errors import UserError
from scattertag.geometry import GeometryOptions
from scattertag.io.readers import split_source
from scattertag.prediction.sources import Item

#: Columns naming the file; the first present is used.
PATH_COLUMNS = ("path", "local_path")

#: Geometry columns shared with the predict manifest.
GEOMETRY_COLUMNS = ("beam_x", "beam_y", "pixel_size_um", "distance_m", "energy_kev", "mask")

#: Columns that are neither geometry nor tags.
OTHER_COLUMNS = ("frame", "group", "note", "notes", "comment")

#: Cell text -> label value; anything else is an error of that row.
LABEL_VALUES = {"1": 1.0, "0": 0.0, "": np.nan}


class LabelsError(UserError):
    """A labels or centres table that cannot be used at all (missing file, no file column)."""


@dataclass
class LabelTable:
    """The usable rows of a labels table.

    items : one prediction Item per row (geometry resolved; files not read yet).
    labels : (n, T) float, 1 / 0 / NaN (unknown), columns in ``tags`` order.
    tags : the tag columns of the table, in table order.
    groups : (n,) group name per row.
    lines : (n,) line number of each row in the table (header = line 1).
    skipped : one message per row that could not be used, naming its line.
    sha256 : checksum of the table file's bytes.
    """

    path: Path
    items: list[Item]
    labels: np.ndarray
    tags: list[str]
    groups: list[str]
    lines: list[int]
    skipped: list[str] = field(default_factory=list)
    sha256: str = ""

    def __len__(self) -> int:
        return len(self.items)

    def first(self, count: int) -> LabelTable:
        """The table cut to its first ``count`` usable rows."""
        return replace(
            self,
            items=self.items[:count],
            labels=self.labels[:count],
            groups=self.groups[:count],
            lines=self.lines[:count],
        )

    def aligned(self, vocabulary: list[str]) -> np.ndarray:
        """(n, len(vocabulary)) labels in the model's tag order, NaN for tags the table lacks.

        Raises LabelsError naming every table tag that the model does not know.
        """
        unknown = [t for t in self.tags if t not in vocabulary]
        if unknown:
            raise LabelsError(
                f"{self.path}: tag column(s) {unknown} are not tags of the model "
                f"(its tags: {', '.join(vocabulary)}); rename or drop them"
            )
        out = np.full((len(self.items), len(vocabulary)), np.nan)
        for j, tag in enumerate(self.tags):
            out[:, vocabulary.index(tag)] = self.labels[:, j]
        return out


def default_group(source: str) -> str:
    """The first word of the file name (split at '_', '-', '.', space), lower-cased."""
    name = Path(split_source(source)[0]).name
    return re.split(r"[_\-. ]", name, maxsplit=1)[0].lower() or name


def _read_rows(path: Path) -> tuple[list[str], list[dict]]:
    """(columns, rows) of a TSV or CSV table, cells stripped."""
    if not path.is_file():
        raise LabelsError(f"{path}: table not found")
    text = path.read_text(encoding="utf-8-sig")
    header = text.splitlines()[0] if text.strip() else ""
    delimiter = "\t" if path.suffix.lower() == ".tsv" or "\t" in header else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    columns = [c.strip() for c in reader.fieldnames or []]
    reader.fieldnames = columns
    rows = [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    return columns, rows


def _path_column(path: Path, columns: list[str]) -> str:
    """The column naming the file; LabelsError if there is none."""
    for name in PATH_COLUMNS:
        if name in columns:
            return name
    raise LabelsError(f"{path}: no file column; expected one of {list(PATH_COLUMNS)}")


def read_centres(path: str | Path) -> dict[str, tuple[str, str]]:
    """{path as written and file name: (beam_x text, beam_y text)} of a centres table."""
    path = Path(path)
    columns, rows = _read_rows(path)
    key = _path_column(path, columns)
    missing = [c for c in ("beam_x", "beam_y") if c not in columns]
    if missing:
        raise LabelsError(f"{path}: centres table lacks column(s) {missing}")
    centres: dict[str, tuple[str, str]] = {}
    for row in rows:
        if row[key]:
            value = (row["beam_x"], row["beam_y"])
            centres.setdefault(Path(split_source(row[key])[0]).name, value)
            centres[row[key]] = value
    return centres


def read_labels(
    path: str | Path,
    centres: str | Path | None = None,
    default: GeometryOptions | None = None,
) -> LabelTable:
    """The labels table at ``path``, beam centres filled from ``centres`` or ``default``.

    Rows with bad values are skipped and listed in ``skipped``; a table with no file
    column raises LabelsError.
    """
    path = Path(path)
    columns, rows = _read_rows(path)
    key = _path_column(path, columns)
    known = {*PATH_COLUMNS, *GEOMETRY_COLUMNS, *OTHER_COLUMNS}
    tags = [c for c in columns if c and c not in known]
    if not tags:
        raise LabelsError(f"{path}: no tag columns (every column besides {sorted(known)} is a tag)")
    table_centres = read_centres(centres) if centres is not None else {}
    items, labels, groups, lines, skipped = [], [], [], [], []
    last = {(row[key], row.get("frame", "")): line for line, row in enumerate(rows, start=2)}
    for line, row in enumerate(rows, start=2):
        if last[(row[key], row.get("frame", ""))] != line:
            continue  # corrected again further down: the last line counts
        try:
            item, values = _row(path, row, key, tags, table_centres, default)
        except ValueError as exc:
            skipped.append(f"{path.name} line {line}: {exc}")
            continue
        items.append(item)
        labels.append(values)
        groups.append(row.get("group") or default_group(item.source))
        lines.append(line)
    return LabelTable(
        path=path,
        items=items,
        labels=np.array(labels, dtype=np.float64).reshape(len(items), len(tags)),
        tags=tags,
        groups=groups,
        lines=lines,
        skipped=skipped,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
    )


def _row(
    table: Path,
    row: dict,
    key: str,
    tags: list[str],
    centres: dict[str, tuple[str, str]],
    default: GeometryOptions | None,
) -> tuple[Item, list[float]]:
    """(Item, tag values) of one row; ValueError saying what is wrong with it."""
    source = row[key]
    if not source:
        raise ValueError(f"{key} is empty")
    bad = [f"{t}={row[t]!r}" for t in tags if row.get(t, "") not in LABEL_VALUES]
    if bad:
        raise ValueError(f"{source}: tag values must be 1, 0 or blank, got {', '.join(bad)}")
    file, dataset = split_source(source)
    beam = (row.get("beam_x", ""), row.get("beam_y", ""))
    if not all(beam):
        beam = centres.get(source) or centres.get(Path(file).name) or ("", "")
    if not all(beam) and default is None:
        raise ValueError(
            f"{source}: no beam centre (give beam_x, beam_y, a centres table or a default)"
        )
    options = GeometryOptions.from_user(
        beam if all(beam) else None,
        None,
        str(table.parent / row["mask"]) if row.get("mask") else None,
        row.get("pixel_size_um"),
        row.get("distance_m"),
        row.get("energy_kev"),
        row.get("frame"),
    )
    if default is not None:
        options = options.filled_from(default)
    location = str(table.parent / file) + (f"::{dataset}" if dataset else "")
    item = Item(source=source, location=location, frame=options.frame, options=options)
    return item, [LABEL_VALUES[row.get(t, "")] for t in tags]
