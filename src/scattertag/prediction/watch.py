"""``scattertag predict --watch DIR``: tag files as a detector writes them into a folder.

Every ``interval`` seconds the folder is scanned. A file is tagged once its size and
modification time have stayed the same for ``settle`` seconds over at least two scans. If
it then fails to read and has changed meanwhile, is locked by its HDF5 writer, or has not
yet been still for ``patience`` seconds (a stalled writer), it is tried again later
instead of being given an error row. The rows of one file are appended to the output CSV
in one write, fsynced (:class:`scattertag.io.atomic.AppendingCSV`: never half a row, a
partial line left by a crash is cut off on restart); files already in that CSV are not
tagged again.

The frames of one scan whose centre comes from the image are settled by set-up as in
``predict`` (:mod:`scattertag.prediction.series`: a calibrant's pose refits short arcs,
frames not found take the centre their set-up's found frames agree on), and a set-up
settled in an earlier scan offers its centre to later frames, taken at a glance.
"""

from __future__ import annotations

import csv
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from itertools import groupby
from pathlib import Path

from scattertag.adapt.provenance import sidecar_path
from scattertag.geometry import GeometryOptions
from scattertag.io.atomic import AppendingCSV, check_output
from scattertag.io.files import write_json
from scattertag.io.readers import NOT_FRAMES, detector_files, is_detector_file
from scattertag.parallel import limited_threads, worker_split
from scattertag.prediction.grouping import tag_by_geometry
from scattertag.prediction.pipeline import Predictor, Workers, item_timeout, tag_items
from scattertag.prediction.series import SeriesPooling
from scattertag.prediction.sources import geometry_options, items_from_paths
from scattertag.prediction.table import columns, csv_lines, read_csv


class FolderScanner:
    """Finds files in ``folder`` that are complete and not yet tagged.

    A file is a candidate when its size and modification time are the same on two scans
    at least ``settle`` seconds apart and it is ``settle`` seconds old; :meth:`accept`
    then decides from the tagging result whether it is done. ``done`` holds the paths
    (absolute, as str) already tagged. The folder is resolved, so naming it relative or
    absolute gives the same paths.
    """

    def __init__(
        self,
        folder: str | Path,
        done: Iterable[str] = frozenset(),
        settle: float = 1.0,
        patience: float | None = None,
    ) -> None:
        self.folder = Path(folder).resolve()
        if not self.folder.is_dir():
            raise ValueError(f"--watch {folder}: not a folder")
        self.done = {_absolute(p) for p in done}
        self.settle = settle
        self.patience = max(30.0, 10 * settle) if patience is None else patience
        self._since: dict[str, tuple[tuple[int, int], float]] = {}  # signature, first seen

    def scan(self) -> list[str]:
        """Paths that look complete and are not done, sorted by name."""
        seen, ready = {}, []
        now = time.time()
        for entry in sorted(os.scandir(self.folder), key=lambda e: e.name):
            path = str(self.folder / entry.name)
            if path in self.done or entry.name.lower().endswith(NOT_FRAMES):
                continue
            try:  # the file may be deleted or renamed while we look at it
                if not entry.is_file():
                    continue
                st = entry.stat()
            except OSError:
                continue
            signature = (st.st_size, st.st_mtime_ns)
            old = self._since.get(path)
            since = old[1] if old and old[0] == signature else now
            seen[path] = (signature, since)
            if (
                st.st_size > 0
                and old is not None
                and old[0] == signature
                and now - since >= self.settle
                and now - st.st_mtime_ns * 1e-9 >= self.settle
            ):
                if is_detector_file(path):  # not notes, nor Eiger data files of a master
                    ready.append(path)
                else:
                    self.done.add(path)
        self._since = seen
        return ready

    def accept(self, path: str, rows: list[dict]) -> bool:
        """True if ``rows`` are ``path``'s final result; False to try it again on a later scan.

        Tagged rows are final. An error is final only if the file is unchanged since the
        scan and has been so for ``patience`` seconds (a writer may stall half-way) and is
        not locked by its writer; a file that disappeared is forgotten.
        """
        if not any(row["error"] for row in rows):
            return True
        try:
            st = os.stat(path)
        except OSError:
            self._since.pop(path, None)
            return False
        old = self._since.get(path)
        if old is None or old[0] != (st.st_size, st.st_mtime_ns):
            self._since.pop(path, None)  # still being written: start settling again
            return False
        if any(_LOCKED in row["error"] for row in rows):
            return False
        return time.time() - old[1] >= self.patience


#: What HDF5 says about a file its writer still holds open.
_LOCKED = "unable to lock file"


def _absolute(path: str) -> str:
    """``path`` made absolute with links resolved, as the scanner names files."""
    return str(Path(path).resolve())


def watch(
    folder: str | Path,
    out: str | Path,
    *,
    options: GeometryOptions | None = None,
    model: str | Path | Predictor | None = None,
    workers: int | None = 0,
    batch_size: int = 16,
    interval: float = 1.0,
    device: str = "cpu",
    settle: float | None = None,
    patience: float | None = None,
    stop: threading.Event | None = None,
    thresholds: Mapping[str, float] | None = None,
    timeout: float | None = None,
    symmetries: int = 1,
    series: bool = True,
    **geometry: object,
) -> int:
    """Tag files appearing in ``folder`` into ``out`` until ``stop`` is set, Ctrl-C or SIGTERM.

    Returns 0 if every row so far was tagged, 1 if some failed. ``settle`` defaults to
    ``interval``; ``patience`` (seconds a failing file must stay unchanged before its error
    row is final) to max(30, 10 settle).
    ``timeout``: seconds a file may take in a worker process, ``symmetries``: logits averaged
    over that many symmetries of the frame, ``series``: settle centres by set-up (all as
    for :func:`scattertag.predict`).
    ``geometry``: the keywords of :func:`scattertag.predict` (beam_center, poni, mask,
    pixel_size_um, distance_m, energy_kev, frame), or give them as one ``options``.
    """
    options = geometry_options(options, **geometry)
    if Path(folder).is_dir():
        check_output(out, detector_files(folder))
    if isinstance(model, Predictor):
        predictor = model
    else:
        predictor = Predictor(model, device=device, thresholds=thresholds, symmetries=symmetries)
    workers, model_threads = worker_split(workers)
    seconds = item_timeout(timeout, workers)
    out = Path(out)
    write_json(sidecar_path(out), predictor.provenance)
    with (
        limited_threads(1, model_threads),
        _open_output(out, predictor.vocabulary) as (
            csv_file,
            done,
        ),
    ):
        scanner = FolderScanner(folder, done, interval if settle is None else settle, patience)
        if csv_file.repaired:
            print(
                f"{out}: cut off a partial last line ({csv_file.repaired} bytes)", file=sys.stderr
            )
        pooling = SeriesPooling(series)  # kept across scans: earlier set-ups offer centres
        tagged, failed = _watch_loop(
            scanner,
            csv_file,
            predictor,
            options,
            workers,
            batch_size,
            interval,
            stop,
            seconds,
            pooling,
        )
    print(f"watch stopped: {tagged - failed} of {tagged} frames tagged -> {out}", file=sys.stderr)
    return 1 if failed else 0


def _watch_loop(
    scanner, csv_file, predictor, options, workers, batch_size, interval, stop, timeout, series
) -> tuple[int, int]:
    """Scan, tag and append until stopped; (frames written, frames failed).

    ``timeout``: seconds one file may take in a worker process; ``series``: the
    SeriesPooling of the whole watch."""
    stop = stop or threading.Event()
    tagged = failed = 0
    try:
        with Workers(predictor.view_spec, workers, timeout, ahead=2 * batch_size) as prepare:
            while not stop.is_set():
                paths = scanner.scan()
                items = items_from_paths(paths, options)
                rows = tag_by_geometry(
                    series.offer(items),
                    lambda part: tag_items(part, predictor, prepare, batch_size, series.see),
                    count=prepare.count_frames,
                    revise=series.revise,
                )
                for path, group in groupby(rows, key=lambda row: row["path"]):
                    file_rows = list(group)
                    if not scanner.accept(path, file_rows):
                        continue
                    try:  # all rows of a file or none
                        csv_file.append(csv_lines(predictor.vocabulary, file_rows, header=False))
                    except OSError as exc:
                        print(
                            f"cannot append to {csv_file.path} ({exc.strerror}); "
                            f"{path} will be tagged again",
                            file=sys.stderr,
                        )
                        continue
                    scanner.done.add(path)
                    for row in file_rows:
                        tagged += 1
                        failed += bool(row["error"])
                        what = row["error"] or row["tags"] or "(no tags)"
                        print(f"{row['path']} [{row['frame']}]: {what}", file=sys.stderr)
                stop.wait(interval)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the workers are already stopped
        pass
    return tagged, failed


@contextmanager
def _open_output(out: Path, vocabulary: list[str]) -> Iterator[tuple[AppendingCSV, set[str]]]:
    """The output opened for appending (header written if new) and the paths already in it."""
    header = csv_lines(vocabulary, [], header=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with AppendingCSV(out, header) as csv_file:
        with open(out, newline="") as f:
            first = next(csv.reader(f), [])
        if first != columns(vocabulary):
            raise ValueError(
                f"{out}: existing CSV has columns {first}, this model writes {columns(vocabulary)}"
            )
        yield csv_file, {row["path"] for row in read_csv(out)}
