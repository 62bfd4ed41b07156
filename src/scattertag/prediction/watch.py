"""``scattertag predict --watch DIR``: tag files as a detector writes them into a folder.

Every ``interval`` seconds the folder is scanned. A file is tagged once its size and
modification time have not changed between two scans and it is at least ``settle``
seconds old, so a file still being written is never read half-way. Rows are appended to
the output CSV and flushed after each batch; files already in that CSV (from an earlier
run) are not tagged again.
"""

from __future__ import annotations

import csv
import os
import sys
import threading
import time
from pathlib import Path

from scattertag.io.readers import SUFFIXES
from scattertag.prediction.pipeline import Predictor, Workers, tag_items
from scattertag.prediction.sources import items_from_paths, make_setup
from scattertag.prediction.table import columns, csv_lines, read_csv


class FolderScanner:
    """Finds files in ``folder`` that are complete and not yet tagged.

    ``done`` holds the paths (as str) already tagged; ``scan()`` returns the new complete ones.
    """

    def __init__(
        self, folder: str | Path, done: set[str] = frozenset(), settle: float = 1.0
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ValueError(f"--watch {folder}: not a folder")
        self.done = set(done)
        self.settle = settle
        self._last: dict[str, tuple[int, int]] = {}

    def scan(self) -> list[str]:
        """Paths that look complete (same size and mtime as last scan, settled), sorted by name."""
        seen, ready = {}, []
        now = time.time()
        for entry in sorted(os.scandir(self.folder), key=lambda e: e.name):
            path = str(self.folder / entry.name)
            if (
                path in self.done
                or not entry.is_file()
                or not entry.name.lower().endswith(SUFFIXES)
            ):
                continue
            st = entry.stat()
            seen[path] = (st.st_size, st.st_mtime_ns)
            if (
                st.st_size > 0
                and self._last.get(path) == seen[path]
                and now - st.st_mtime_ns * 1e-9 >= self.settle
            ):
                ready.append(path)
        self._last = seen
        self.done.update(ready)
        return ready


def watch(
    folder: str | Path,
    out: str | Path,
    *,
    beam_center: tuple[float, float] | None = None,
    poni: str | Path | None = None,
    mask: str | Path | None = None,
    pixel_size_um: float | None = None,
    distance_m: float | None = None,
    energy_kev: float | None = None,
    frame: int | None = None,
    model: str | Path | Predictor | None = None,
    workers: int = 0,
    batch_size: int = 16,
    interval: float = 1.0,
    settle: float | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Tag files appearing in ``folder`` into ``out`` until ``stop`` is set or Ctrl-C.

    Returns 0 if every row so far was tagged, 1 if some failed. ``settle`` defaults to ``interval``.
    """
    setup = make_setup(beam_center, poni, pixel_size_um, distance_m, energy_kev)
    if setup is None:
        raise ValueError("--watch needs a geometry: --beam-center X Y or --poni FILE")
    predictor = model if isinstance(model, Predictor) else Predictor(model)
    out = Path(out)
    done = _open_output(out, predictor.vocabulary)
    scanner = FolderScanner(folder, done, interval if settle is None else settle)
    stop = stop or threading.Event()
    tagged = failed = 0
    with Workers(predictor.view_spec, workers) as prepare, open(out, "a", newline="") as f:
        try:
            while not stop.is_set():
                items = items_from_paths(
                    scanner.scan(), setup, None if mask is None else str(mask), frame
                )
                for row in tag_items(items, predictor, prepare, batch_size):
                    f.write(csv_lines(predictor.vocabulary, [row], header=False))
                    f.flush()
                    tagged += 1
                    failed += bool(row["error"])
                    print(
                        f"{row['path']} [{row['frame']}]: {row['error'] or row['tags'] or '(no tags)'}",
                        file=sys.stderr,
                    )
                stop.wait(interval)
        except KeyboardInterrupt:
            pass
    print(f"watch stopped: {tagged - failed} of {tagged} frames tagged -> {out}", file=sys.stderr)
    return 1 if failed else 0


def _open_output(out: Path, vocabulary: list[str]) -> set[str]:
    """Paths already tagged in ``out``; writes the header if ``out`` is new or empty."""
    header = columns(vocabulary)
    if out.is_file() and out.stat().st_size > 0:
        with open(out, newline="") as f:
            first = next(csv.reader(f), [])
        if first != header:
            raise ValueError(f"{out}: existing CSV has columns {first}, this model writes {header}")
        return {row["path"] for row in read_csv(out)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(csv_lines(vocabulary, [], header=True))
    return set()
