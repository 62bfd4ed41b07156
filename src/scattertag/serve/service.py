"""The service without HTTP: tag items into the store, feed folders, correct tags, publish events.

:class:`Service` owns the model (through :class:`~.tagger.Tagger`), the SQLite store, the
labels table, the upload folder and the pictures. The HTTP layer (:mod:`.app`) only turns
requests into calls of these methods and their errors into status codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from scattertag.cache import BoundedCache
from scattertag.geometry import DetectorValues, GeometryOptions
from scattertag.io.readers import ReadError, count_frames, load_readers
from scattertag.parallel import worker_split
from scattertag.prediction.pipeline import Predictor
from scattertag.prediction.sources import Item
from scattertag.prediction.watch import FolderScanner
from scattertag.serve.cluster import ClusterTagger
from scattertag.serve.config import ServeConfig
from scattertag.serve.labels import LabelsTable, label_value
from scattertag.serve.pictures import Pictures
from scattertag.serve.store import Record, Store
from scattertag.serve.tagger import Tagger, Timings, add
from scattertag.serve.uploads import UploadError, UploadFolder

log = logging.getLogger("scattertag.serve")

#: Per-frame outputs a predictor may add to its rows, passed through to the API when present.
EXTRA_OUTPUTS = ("ood", "unfamiliarity")


class NotFound(LookupError):
    """A frame id or file that does not exist (HTTP 404)."""


class Forbidden(PermissionError):
    """A path outside the served folders (HTTP 403)."""


def setup_json(setup: GeometryOptions) -> dict:
    """The geometry of options as plain JSON values: given, else from the PONI file, else the
    reference detector's (beam_center None when only the file can tell)."""
    values = setup.values
    if values.beam_center is not None:
        geometry = setup.resolve((1, 1))[0]  # fills the reference detector's values
        values = DetectorValues(
            geometry.beam_center, geometry.pixel_size, geometry.distance, geometry.energy
        )
    return json.loads(json.dumps(asdict(values)))


def request_setup(
    default: GeometryOptions | None,
    beam_x: float | None = None,
    beam_y: float | None = None,
    pixel_size_um: float | None = None,
    distance_m: float | None = None,
    energy_kev: float | None = None,
) -> tuple[GeometryOptions, str]:
    """(geometry, beam-centre source) of a request: its own beam centre, else the server's."""
    if (beam_x is None) != (beam_y is None):
        raise ValueError("give both beam_x and beam_y (pixels: x = column, y = row), or neither")
    if beam_x is None and default is None:
        raise ValueError(
            "no geometry: give beam_x and beam_y (pixels: x = column, y = row); this server "
            "has no default (--beam-center or --poni)"
        )
    beam = None if beam_x is None else (beam_x, beam_y)
    setup = GeometryOptions.from_user(beam, None, None, pixel_size_um, distance_m, energy_kev)
    if default is not None:
        setup = setup.filled_from(default)
    return setup, "server" if beam_x is None else "request"


@dataclass
class Arrival:
    """An upload saved under its content name: its flush to disk (under way), its frame count
    (or why it cannot be read) and the results stored for it with the request's geometry."""

    path: Path
    flushed: Future
    count: int | ReadError
    stored: list[Record]

    def seen(self, frame: int | None) -> list[Record] | None:
        """The stored results of every frame asked for (``frame``, or all), else None."""
        wanted = [r for r in self.stored if frame is None or r.frame == frame]
        complete = isinstance(self.count, int) and len(wanted) == (
            self.count if frame is None else 1
        )
        return wanted if complete else None


async def done(future: Future) -> None:
    """Wait for a thread's future; one that is already done costs no event-loop wake-up."""
    if future.done():
        future.result()
    else:
        await asyncio.wrap_future(future)


class Events:
    """Fan-out of newly tagged frames to server-sent-event subscribers (one queue each)."""

    def __init__(self, backlog: int = 1000) -> None:
        self._queues: set[asyncio.Queue] = set()
        self.backlog = backlog

    def subscribe(self) -> asyncio.Queue:
        """A queue receiving the JSON of every frame stored from now on (None: fell behind)."""
        queue: asyncio.Queue = asyncio.Queue(self.backlog + 1)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        """Stop sending to ``queue``."""
        self._queues.discard(queue)

    def publish(self, records: list[Record]) -> None:
        """Send records to every subscriber; one that fell behind gets None and is dropped."""
        for queue in list(self._queues):
            for r in records:
                if queue.qsize() >= self.backlog:
                    queue.put_nowait(None)  # it reconnects and replays from its last id
                    self._queues.discard(queue)
                    break
                queue.put_nowait(r.to_json())


class Service:
    """Tagging, storage, feeds and corrections of ``scattertag serve``."""

    def __init__(self, config: ServeConfig, predictor: Predictor | None = None) -> None:
        self.config = config
        self.predictor = (
            predictor
            if predictor is not None
            else Predictor(config.model, symmetries=config.symmetries)
        )
        vocabulary = self.predictor.vocabulary
        self.store = Store(config.db, vocabulary)
        self.labels = LabelsTable(config.labels, vocabulary)
        self.uploads = UploadFolder(config.uploads)
        self.pictures = Pictures(self.predictor.view_spec)
        self.events = Events()
        self.tagger: Tagger | ClusterTagger
        if config.dask:
            self.tagger = ClusterTagger(
                config.dask, config.model, config.workers or 0, config.batch_size, config.symmetries
            )
        else:
            self.tagger = Tagger(
                self.predictor,
                worker_split(config.workers)[0],  # None: one per usable core
                config.threads,
                config.batch_size,
                config.max_wait_s,
            )
        self._feeds: list[asyncio.Task] = []
        # geometry of requests and its JSON, resolved once per distinct geometry
        self._setups: BoundedCache[tuple[GeometryOptions, str]] = BoundedCache(64)
        self._json: BoundedCache[dict] = BoundedCache(64)
        # geometry and mask of folder and Tiled frames: one object, so its JSON is made once
        self.feed_setup = None if config.setup is None else replace(config.setup, mask=config.mask)

    def request_setup(self, **given: float | None) -> tuple[GeometryOptions, str]:
        """:func:`request_setup` with the server's geometry, kept for each distinct request."""
        key = tuple(sorted(given.items()))
        return self._setups.get(key, lambda: request_setup(self.config.setup, **given))

    def setup_json(self, setup: GeometryOptions) -> dict:
        """:func:`setup_json`, kept for each options object (they compare by identity)."""
        return self._json.get(setup, lambda: setup_json(setup))

    async def start(self) -> None:
        """Start the tagger and the folder and Tiled feeds."""
        await asyncio.to_thread(load_readers)  # seconds of imports, not in the first request
        await self.tagger.__aenter__()
        for folder in self.config.folders:
            self._feeds.append(asyncio.create_task(self._feed_folder(folder)))
        if self.config.tiled:
            from scattertag.serve.tiled import feed_tiled

            for uri in self.config.tiled:
                self._feeds.append(asyncio.create_task(feed_tiled(self, uri)))

    async def stop(self) -> None:
        """Stop the feeds and the tagger; close the store."""
        for task in self._feeds:
            task.cancel()
        await asyncio.gather(*self._feeds, return_exceptions=True)
        await self.tagger.__aexit__(None, None, None)
        self.uploads.close()
        self.store.close()

    # ---- tagging ---------------------------------------------------------------------
    async def tag(
        self,
        item: Item,
        *,
        folder: str,
        name: str,
        when: float,
        beam_source: str,
        keep_failed: bool,
        stored: Awaitable | None = None,
        timings: Timings | None = None,
    ) -> list[Record]:
        """Tag every frame of ``item``, store and publish the results (failed ones if asked).

        ``stored``: awaited before the results are stored (the item's file reaching the disk).
        ``timings``: gets the ms of each step (:meth:`Tagger.rows`; flush: waiting for
        ``stored``; store).
        """
        rows = await self.tagger.rows(item, timings)
        return await self._keep_rows(
            item, rows, folder, name, when, beam_source, keep_failed, stored, timings
        )

    async def _keep_rows(
        self,
        item: Item,
        rows: list[dict],
        folder: str,
        name: str,
        when: float,
        beam_source: str,
        keep_failed: bool,
        stored: Awaitable | None,
        timings: Timings | None,
    ) -> list[Record]:
        """The records of ``item``'s rows, stored and published (see :meth:`tag`)."""
        start = time.perf_counter()
        if stored is not None:
            await stored
        flushed = time.perf_counter()
        records = [self._record(item, row, folder, name, when, beam_source) for row in rows]
        self.keep(records if keep_failed else [r for r in records if not r.error])
        add(timings, "flush", flushed - start)
        add(timings, "store", time.perf_counter() - flushed)
        return records

    def keep(self, records: list[Record]) -> None:
        """Store records and tell the event subscribers."""
        if records:
            self.store.add(records)
            self.events.publish(records)

    def _record(
        self, item: Item, row: dict, folder: str, name: str, when: float, beam_source: str
    ) -> Record:
        """A store record of one output row of the predictor."""
        assert item.options is not None
        setup = self.setup_json(item.options)
        beam = None
        if row.get("beam_x") not in (None, ""):  # a predictor that reports the geometry it used
            beam = (float(row["beam_x"]), float(row["beam_y"]))
        vocabulary = self.predictor.vocabulary
        ok = not row["error"]
        return Record(
            source=item.source,
            frame=0 if row["frame"] is None else int(row["frame"]),
            location=item.location,
            folder=folder,
            name=name,
            time=when,
            tagged_at=time.time(),
            setup=setup,
            beam_center=beam,
            # the server's own names for a given centre; poni, header or estimated as they are
            beam_source=beam_source
            if row.get("geometry_source") in (None, "", "given")
            else row["geometry_source"],
            probabilities={t: float(row[t]) for t in vocabulary} if ok else {},
            tags=[t for t in row["tags"].split(";") if t],
            error=row["error"],
            mask=item.options.mask if isinstance(item.options.mask, str) else None,  # a file
            extra={k: row[k] for k in EXTRA_OUTPUTS if row.get(k) is not None},
        )

    async def tag_upload(
        self,
        data: bytes | memoryview,
        suffix: str,
        filename: str,
        setup: GeometryOptions,
        beam_source: str,
        frame: int | None = None,
        dataset: str | None = None,
        timings: Timings | None = None,
    ) -> list[Record]:
        """Tag an uploaded file (stored by content); the same bytes and geometry are not re-tagged.

        UploadError 422 if the file cannot be read or no frame of it can be tagged.
        ``timings``: gets the ms of each step (arrive: waiting for a preparing thread, and
        saved, counted and looked up there; then those of :meth:`tag`).
        """
        where = f"::{dataset}" if dataset else ""
        arrival: Arrival | None = None
        item: Item | None = None

        def arrive() -> Item | None:
            """In a preparing thread: the upload saved, counted and looked up; its item if
            it is to be tagged (one hand-off from the event loop per upload)."""
            nonlocal arrival, item
            arrival = self._arrive(data, suffix, where, setup)
            readable = not isinstance(arrival.count, ReadError) and arrival.count > (frame or 0)
            if readable and arrival.seen(frame) is None:
                path = arrival.path
                item = Item(f"uploads/{path.name}{where}", f"{path}{where}", frame, setup)
            return item

        try:
            rows = await self.tagger.rows(arrive, timings)
            assert arrival is not None  # arrive() ran (or raised)
            path = arrival.path
            if isinstance(arrival.count, ReadError):
                raise UploadError(422, str(arrival.count).replace(str(path), filename))
            if frame is not None and frame >= arrival.count:
                raise UploadError(
                    422, f"{filename}: frame {frame} out of range; it has {arrival.count} frame(s)"
                )
            if item is None:  # tagged before with this geometry
                return arrival.seen(frame) or []
            records = await self._keep_rows(
                item,
                rows,
                folder="uploads",
                name=filename,
                when=time.time(),
                beam_source=beam_source,
                keep_failed=False,
                stored=done(arrival.flushed),
                timings=timings,
            )
        finally:
            if arrival is not None:
                with contextlib.suppress(Exception):  # a refused upload is flushed too
                    await done(arrival.flushed)
                self.uploads.release(arrival.path)  # flushed and read: its page cache can go
        if all(r.error for r in records):
            errors = "; ".join(sorted({r.error.replace(str(path), filename) for r in records}))
            raise UploadError(422, errors)
        return records

    def _arrive(
        self, data: bytes | memoryview, suffix: str, where: str, setup: GeometryOptions
    ) -> Arrival:
        """Save an upload, start flushing it, count its frames, find its stored results (in a
        preparing thread)."""
        path = self.uploads.save(data, suffix)
        flushed = self.uploads.flush(path)
        try:
            count: int | ReadError = count_frames(f"{path}{where}")
        except ReadError as exc:
            return Arrival(path, flushed, exc, [])
        stored = self.store.find(f"uploads/{path.name}{where}", self.setup_json(setup))
        return Arrival(path, flushed, count, stored)

    def served_file(self, path: str) -> tuple[Path, Path]:
        """(served folder, file) of a path relative to a served folder (or absolute inside one).

        Forbidden if it resolves (symbolic links followed) outside every served folder.
        """
        if "\x00" in path or not path.strip():
            raise ValueError(f"path {path!r} is empty or holds a NUL byte")
        for folder in self.config.folders:
            target = (folder / path).resolve()
            if target.is_relative_to(folder):
                if not target.is_file():
                    raise NotFound(f"{path}: no such file in {folder}")
                return folder, target
        raise Forbidden(f"{path}: outside the served folders")

    async def tag_path(self, path: str) -> list[Record]:
        """Tag a file of a served folder now (or return its stored result)."""
        folder, target = self.served_file(path)
        assert self.feed_setup is not None  # folders need a geometry (ServeConfig)
        stored = self.store.find(str(target), self.setup_json(self.feed_setup))
        return stored or await self._tag_file(folder, target)

    async def _tag_file(self, folder: Path, path: Path, keep_failed: bool = True) -> list[Record]:
        """Tag one file of a served folder with the server's geometry and mask."""
        assert self.feed_setup is not None  # folders need a geometry (ServeConfig)
        item = Item(str(path), str(path), None, self.feed_setup)
        try:
            when = path.stat().st_mtime
        except OSError:
            when = time.time()
        return await self.tag(
            item,
            folder=str(folder),
            name=path.name,
            when=when,
            beam_source="server",
            keep_failed=keep_failed,
        )

    async def _feed_folder(self, folder: Path) -> None:
        """Tag the folder's files; with ``watch``, keep tagging new ones as they settle.

        Watching, a file that fails is tried again on later scans until the scanner judges
        the failure final (the file unchanged for a while), and only then stored.
        """
        watch, interval = self.config.watch, self.config.interval_s
        scanner = FolderScanner(folder, self.store.sources(str(folder)), interval if watch else 0)
        first = True
        while True:
            try:
                ready = await asyncio.to_thread(scanner.scan)
                if first and not watch:
                    ready = await asyncio.to_thread(scanner.scan)  # unchanged since: complete
                outside = [p for p in ready if not Path(p).resolve().is_relative_to(folder)]
                for p in outside:
                    log.warning("%s: links outside the served folder; not tagged", p)
                    scanner.done.add(p)
                ready = [p for p in ready if p not in outside]
                results = await asyncio.gather(
                    *(self._tag_file(folder, Path(p), keep_failed=not watch) for p in ready),
                    return_exceptions=True,
                )
                for p, result in zip(ready, results):
                    if isinstance(result, BaseException):
                        log.error("%s: %s", p, result)
                    elif not watch or scanner.accept(p, [{"error": r.error} for r in result]):
                        scanner.done.add(p)
                        if watch:
                            self.keep([r for r in result if r.error])
            except Exception:  # a feed never dies; the next scan tries again
                log.exception("scanning %s", folder)
            if not watch:
                return
            first = False
            await asyncio.sleep(interval)

    # ---- corrections -----------------------------------------------------------------
    def record(self, frame_id: int) -> Record:
        """A stored frame; NotFound if there is none with this id."""
        record = self.store.get(frame_id)
        if record is None:
            raise NotFound(f"no frame with id {frame_id}")
        return record

    def correct(self, frame_id: int, labels: dict, note: str = "") -> dict:
        """Append corrected tags of a frame to the labels table; returns the row written."""
        record = self.record(frame_id)
        unknown = sorted(set(labels) - set(self.predictor.vocabulary))
        if unknown:
            raise ValueError(
                f"unknown tag(s) {unknown}; the model's tags: {self.predictor.vocabulary}"
            )
        values = {t: label_value(t, v) for t, v in labels.items()}
        if record.frame:
            note = f"frame {record.frame}" + (f"; {note}" if note else "")
        row = self.labels.append(self._label_path(record), values, note)
        self.store.add_labels(frame_id, values, note, time.time())
        return row

    def _label_path(self, record: Record) -> str:
        """The frame's file relative to the labels table's folder when inside it, else absolute."""
        base = self.labels.path.parent.resolve()
        path = Path(record.location.split("::")[0]).resolve()
        rel = path.relative_to(base) if path.is_relative_to(base) else path
        dataset = record.location.partition("::")[2]
        return str(rel) + (f"::{dataset}" if dataset else "")
