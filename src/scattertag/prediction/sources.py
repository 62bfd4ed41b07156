"""What to tag: files named on the command line or in a file list (a CSV manifest), or arrays.

Every item carries :class:`~scattertag.geometry.GeometryOptions` (beam centre, PONI file,
mask, detector values, dummy); the frame shape, and what the user left blank, come from
the file when it is read. A problem with one row of a file list (a beam centre given as
text, say) becomes that item's ``error`` so the run goes on; a problem with the list as a
whole raises :class:`FileListError`.

File-list columns: ``path`` (relative to the list's folder, or absolute; may end in
``::/dataset``), and optionally ``beam_x``, ``beam_y`` (pixels: x = column, y = row, (0, 0)
the centre of the first pixel; blank: from the PONI file, the header or the image),
``mask`` (image file, nonzero = excluded), ``frame``, ``pixel_size_um``, ``distance_m``,
``energy_kev``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from scattertag.geometry import GeometryOptions
from scattertag.io.readers import detector_files, split_source
from scattertag.prediction.beam import SeriesCentre

FILE_LIST_COLUMNS = (
    "path",
    "beam_x",
    "beam_y",
    "mask",
    "frame",
    "pixel_size_um",
    "distance_m",
    "energy_kev",
)


class FileListError(ValueError):
    """A file list that cannot be used at all (missing file or required column)."""


@dataclass(frozen=True, eq=False)
class Item:
    """One file, one frame of it, or an in-memory stack, to tag.

    source : the file as the user named it (the ``path`` column of the output).
    location : the file to read, resolved, with any ``::/dataset``; '' for an array.
    frame : frame index, or None for every frame.
    options : the geometry options; None only when ``error`` is set.
    counts : (rows, cols) or (frames, rows, cols) array to tag instead of a file, or None.
    error : why this item cannot be tagged before even reading it ('' if it can).
    centre : the beam centre its set-up settled (:mod:`scattertag.prediction.series`),
        used when nothing stronger than the image gives one; None: the image's own.
    """

    source: str
    location: str
    frame: int | None = None
    options: GeometryOptions | None = None
    counts: np.ndarray | None = None
    error: str = ""
    centre: SeriesCentre | None = None


def geometry_options(options: GeometryOptions | None = None, **user: object) -> GeometryOptions:
    """``options``, or the options made from the user's keywords (GeometryOptions.from_user)."""
    if options is None:
        return GeometryOptions.from_user(**user)  # type: ignore[arg-type]
    if any(v is not None for v in user.values()):
        raise ValueError("give options=GeometryOptions(...) or the geometry keywords, not both")
    return options


def items_from_paths(
    paths: list[str], options: GeometryOptions, recursive: bool = False
) -> list[Item]:
    """One Item per path given on the command line (a folder: each detector file in it,
    in subfolders too if ``recursive``), all with the same options, each with the PONI file
    beside it when the options give no beam centre and no PONI file."""
    items = []
    for path in paths:
        file, _ = split_source(str(path))
        if Path(file).is_dir():
            found = detector_files(file, recursive)
            items += [Item(str(p), str(p), options.frame, _with_poni(options, p)) for p in found]
            if not found:
                error = f"{file}: no detector files in this folder" + (
                    "" if recursive else " (--recursive to look in its subfolders)"
                )
                items.append(Item(str(path), str(path), options.frame, options, error=error))
        else:
            items.append(Item(str(path), str(path), options.frame, _with_poni(options, file)))
    return items


def poni_beside(path: str | Path) -> Path | None:
    """The PONI file of a data file: ``<stem>.poni`` beside it, else the folder's only one."""
    path = Path(path)
    same = path.with_name(path.name.split(".")[0] + ".poni")
    if same.is_file():
        return same
    if not path.parent.is_dir():
        return None
    found = list(path.parent.glob("*.poni"))
    return found[0] if len(found) == 1 else None


def _with_poni(options: GeometryOptions, path: str | Path) -> GeometryOptions:
    """``options``, with the PONI file beside ``path`` when they give no centre or PONI."""
    if options.has_beam_center:
        return options
    poni = poni_beside(path)
    return options if poni is None else replace(options, poni=str(poni))


def item_from_array(name: str, counts: np.ndarray, options: GeometryOptions) -> Item:
    """An Item tagging the frames of an in-memory (rows, cols) or (frames, rows, cols) array."""
    counts = np.asarray(counts)
    if counts.ndim not in (2, 3) or counts.dtype.kind not in "biuf":
        raise ValueError(
            f"{name}: expected a 2-D frame or a 3-D stack of numbers, got a {counts.ndim}-D "
            f"{counts.dtype} array"
        )
    return Item(name, "", options.frame, options, counts)


def read_file_list(path: str | Path, default: GeometryOptions | None = None) -> list[Item]:
    """Items from a file list (CSV); ``default`` fills what a row leaves blank."""
    path = Path(path)
    if not path.is_file():
        raise FileListError(f"{path}: file list not found")
    with open(path, newline="", encoding="utf-8-sig") as f:  # spreadsheets write a BOM
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = columns
        rows = list(reader)
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise FileListError(f"{path}: column(s) {repeated} appear more than once")
    unknown = sorted(set(columns) - set(FILE_LIST_COLUMNS))
    if unknown:
        raise FileListError(
            f"{path}: unknown column(s) {unknown}; allowed: {', '.join(FILE_LIST_COLUMNS)}"
        )
    missing = [c for c in ("path", "beam_x", "beam_y") if c not in columns]
    if "path" in missing or len(missing) == 1:  # a path column, and both beam columns or none
        raise FileListError(
            f"{path}: missing column(s) {missing} (path is needed, and beam_x with beam_y)"
        )
    default = default or GeometryOptions()
    return [_row_item(path, line, row, default) for line, row in enumerate(rows, start=2)]


def _row_item(file_list: Path, line: int, row: dict, default: GeometryOptions) -> Item:
    """The Item of one file-list row; bad values become its error, prefixed with where they are."""
    text = {k: (row.get(k) or "").strip() for k in FILE_LIST_COLUMNS}
    file, dataset = split_source(text["path"])
    location = str(file_list.parent / file) + (f"::{dataset}" if dataset else "")
    errors = [] if text["path"] else ["path is empty"]
    frame, options = default.frame, None
    try:
        frame = GeometryOptions.from_user(frame=text["frame"]).frame if text["frame"] else frame
    except ValueError as exc:
        errors.append(str(exc))
    try:
        options = replace(_row_options(file_list, text, default), frame=frame)
    except ValueError as exc:
        errors.append(str(exc))
    error = f"{file_list.name} line {line}: {'; '.join(errors)}" if errors else ""
    return Item(text["path"], location, frame, options, error=error)


def _row_options(file_list: Path, text: dict, default: GeometryOptions) -> GeometryOptions:
    """A row's geometry options: its own values where given, ``default``'s elsewhere."""
    beam = (text["beam_x"], text["beam_y"])
    if any(beam):
        for name, value in zip(("beam_x", "beam_y"), beam):
            if not value:
                raise ValueError(f"{name} is empty; give both beam_x and beam_y, or neither")
    own = GeometryOptions.from_user(
        beam_center=beam if any(beam) else None,
        mask=str(file_list.parent / text["mask"]) if text["mask"] else None,
        pixel_size_um=text["pixel_size_um"],
        distance_m=text["distance_m"],
        energy_kev=text["energy_kev"],
    )
    return own.filled_from(default)
