"""The prediction table: one row per frame, written as CSV.

Columns: ``path``, ``frame``, ``beam_x``, ``beam_y`` (the beam centre used, pixels),
``geometry_source`` (where it came from: given, poni, header, estimated or series, the last
settled from the frames of its set-up), one probability column per tag (vocabulary order),
``tags`` (the tags at or above the thresholds, joined by ';'), ``unfamiliarity`` (how
unlike a scattering frame it is, in decades: above ~0.65 the tags are not to be trusted;
docs/unfamiliarity.md), ``model`` (the model id), ``warning`` (e.g. a given beam centre the
image contradicts, or the frames a ``series`` centre came from) and ``error`` (empty, or
why the frame could not be tagged; its probabilities are then empty). The model folder, id
and every threshold go to a JSON sidecar ``<csv>.json``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from scattertag.io.atomic import atomic_file
from scattertag.io.files import write_json


def columns(vocabulary: Sequence[str]) -> list[str]:
    """The CSV header for a model with this vocabulary."""
    return [
        "path",
        "frame",
        "beam_x",
        "beam_y",
        "geometry_source",
        *vocabulary,
        "tags",
        "unfamiliarity",
        "model",
        "warning",
        "error",
    ]


class Table:
    """Rows of predictions (dicts keyed by :func:`columns`), pandas-free.

    ``table[i]`` is row i; ``table["Ring"]`` the column of Ring probabilities;
    ``pandas.DataFrame(table.rows)`` gives a DataFrame.
    """

    def __init__(
        self, vocabulary: Sequence[str], rows: Iterable[dict] = (), provenance: dict | None = None
    ) -> None:
        self.vocabulary = list(vocabulary)
        self.provenance = provenance  # model id, thresholds...: written as <csv>.json
        self.columns = columns(self.vocabulary)
        self.rows = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, key: int | str):
        if isinstance(key, str):
            if key not in self.columns:
                raise KeyError(f"no column {key!r}; columns: {', '.join(self.columns)}")
            return [row[key] for row in self.rows]
        return self.rows[key]

    def __repr__(self) -> str:
        failed = sum(bool(r["error"]) for r in self.rows)
        return f"Table({len(self.rows)} rows, {failed} failed, {len(self.vocabulary)} tags)"

    @property
    def failed(self) -> list[dict]:
        """The rows that could not be tagged."""
        return [r for r in self.rows if r["error"]]

    def to_csv(self, path: str | Path) -> Path:
        """Write the table as CSV atomically (temporary name, fsync, rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path, "w", newline="") as f:
            writer = csv.DictWriter(f, self.columns)
            writer.writeheader()
            writer.writerows(format_row(r) for r in self.rows)
        if self.provenance is not None:
            from scattertag.adapt.provenance import sidecar_path

            write_json(sidecar_path(path), self.provenance)
        return path


def format_row(row: dict) -> dict:
    """A row with probabilities as 4-decimal text and None as empty cells."""
    return {
        k: ("" if v is None else f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()
    }


def csv_lines(vocabulary: Sequence[str], rows: Iterable[dict], header: bool) -> str:
    """CSV text of ``rows`` (with the header line if ``header``), for appending to a file."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns(vocabulary))
    if header:
        writer.writeheader()
    writer.writerows(format_row(r) for r in rows)
    return buffer.getvalue()


def read_csv(path: str | Path) -> list[dict]:
    """Rows of a prediction CSV as written (all values text)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
