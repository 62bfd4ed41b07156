"""Corrected tags appended to a labels table (TSV) that fine-tuning and evaluation read.

The format is that of ``real-dev/labels.tsv``: a header ``path`` (or ``local_path``), one
column per tag, optionally ``note``; one row per frame with 1 (present), 0 (absent) or blank
(not judged). A correction is one appended line, flushed and fsynced; a frame corrected
twice has two lines and the last one counts.
"""

from __future__ import annotations

import csv
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from scattertag.io.files import write_text

PATH_COLUMNS = ("path", "local_path")


def label_value(tag: str, value: object) -> int | None:
    """A label as 1, 0 or None (not judged); ValueError naming the tag otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or value in (0, 1):
        return 1 if value else 0
    raise ValueError(f"label of {tag!r} must be 1, 0, true, false or null, got {value!r}")


class LabelsTable:
    """A labels TSV: created with ``path``, every tag and ``note``, or an existing one reused."""

    def __init__(self, path: str | Path, vocabulary: Sequence[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if self.path.is_file() and self.path.stat().st_size > 0:
            with open(self.path, newline="") as f:
                header = next(csv.reader(f, delimiter="\t"), [])
            extra = set(header[1:]) - set(vocabulary) - {"note"}
            if not header or header[0] not in PATH_COLUMNS or extra:
                raise ValueError(
                    f"{self.path}: not a labels table for this model (header {header}; need "
                    f"'path' or 'local_path' first, then tags of the vocabulary and 'note')"
                )
            self.columns = header
        else:
            self.columns = ["path", *vocabulary, "note"]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text(self.path, "\t".join(self.columns) + "\n")

    @property
    def tags(self) -> list[str]:
        """The tag columns of the table."""
        return [c for c in self.columns[1:] if c != "note"]

    def append(self, path: str, labels: Mapping[str, object], note: str = "") -> dict:
        """Append one frame's labels; tags not given are blank. Returns the row written."""
        unknown = sorted(set(labels) - set(self.tags))
        if unknown:
            raise ValueError(f"unknown tag(s) {unknown}; {self.path.name} has {self.tags}")
        row: dict[str, object] = {self.columns[0]: path, "note": note}
        row.update({t: label_value(t, labels.get(t)) for t in self.tags})
        line = "\t".join(_cell(row.get(c)) for c in self.columns) + "\n"
        with self._lock, open(self.path, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        return row


def _cell(value: object) -> str:
    """A TSV cell: None blank, tabs and line breaks turned into spaces."""
    text = "" if value is None else str(value)
    return " ".join(text.replace("\t", " ").splitlines())
