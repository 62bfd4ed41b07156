"""The tagging pipeline: items -> views (worker processes) -> batched model -> rows.

Reading and preprocessing are CPU-bound numpy work on one file at a time, so they run in
``workers`` processes (0: in this process), each with its own ViewMaker cache. The network
runs here, on batches, which is where torch is efficient. Rows come out in input order.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, TimeoutError
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import cast

import numpy as np
import torch

from scattertag.cache import BoundedCache
from scattertag.io.readers import count_frames, split_source
from scattertag.parallel import single_threaded_children, worker_context
from scattertag.prediction.prepare import Preparer, Views, prepare_in_worker, start_worker
from scattertag.prediction.sources import Item
from scattertag.signals import result_between_signals, terminate_pool, worker_ignores_interrupts
from scattertag.tags import tags_above

#: Seconds one item (file or frame) may take in a worker before it is given up as stuck.
ITEM_TIMEOUT_S = 600.0


def item_timeout(timeout: float | None, workers: int) -> float:
    """Seconds one item may take in a worker process: ``timeout``, or ITEM_TIMEOUT_S if None.

    A timeout needs worker processes: with ``workers`` = 0 files are read in this process,
    where nothing can stop a reader stuck inside a C library (HDF5 looping on corrupt
    metadata holds the interpreter), so a timeout given then is refused, not ignored.
    """
    if timeout is None:
        return ITEM_TIMEOUT_S
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    if workers == 0:
        raise ValueError(
            "a timeout needs worker processes (workers >= 1): with workers=0 files are read "
            "in this process, where a reader stuck inside a C library cannot be stopped"
        )
    return float(timeout)


#: The tag the geometry decides when the beam centre lies off the frame.
OFF_IMAGE = "Beam Off Image"


class Predictor:
    """A trained tagger with its model card: views -> probabilities -> tags.

    ``model_dir`` is a folder with ``model.safetensors`` and ``model.json`` (None: the
    tagger shipped with the package). ``thresholds`` overrides the card's per-tag
    thresholds by tag name; ``model_id`` and ``provenance`` say which model and cut-offs
    made the rows (:mod:`scattertag.adapt.provenance`). ``symmetries`` (1, 2, 4 or 8)
    averages the logits over that many symmetries of the frame
    (:mod:`scattertag.models.symmetry`), at that many times the network's cost.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        device: str = "cpu",
        thresholds: Mapping[str, float] | None = None,
        symmetries: int = 1,
    ) -> None:
        from scattertag.adapt.provenance import model_id, provenance, with_overrides
        from scattertag.features.views import ViewSpec
        from scattertag.models import load_model, pretrained_dir
        from scattertag.models.fold import fold_batch_norms
        from scattertag.models.symmetry import with_symmetries

        model, self.card = load_model(model_dir)
        self.vocabulary = list(self.card.vocabulary)
        self.view_spec = ViewSpec.from_dict(self.card.view_spec)
        self.device = resolve_device(device)
        # channels-last convolutions run faster on CPU, same results (benchmarks/bench_predict.py)
        # (torch's stubs leave out Module.to's memory_format argument, which it accepts)
        model = fold_batch_norms(model).to(self.device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.model = with_symmetries(model, self.card, symmetries)
        self.thresholds = with_overrides(self.vocabulary, self.card.thresholds, thresholds)
        folder = pretrained_dir() if model_dir is None else Path(model_dir)
        self.model_id = model_id(self.card, folder / "model.safetensors")
        self.provenance = provenance(self.card, folder, self.thresholds, thresholds)
        self.provenance["symmetries"] = symmetries

    @torch.inference_mode()
    def probabilities(self, images: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
        """(B, T) sigmoid probabilities of images (B, C, H, W) and coefficients (B, C, N+1, K)."""
        images_t, coeffs_t = torch.from_numpy(images), torch.from_numpy(coeffs)
        logits = self.model(images_t.to(self.device), coeffs_t.to(self.device))
        return torch.sigmoid(logits).double().cpu().numpy()

    def rows(self, views: list[Views]) -> list[dict]:
        """One output row per Views, in order; the model runs once on all that have no error."""
        ok = [v for v in views if not v.error]
        probs = iter(
            self.probabilities(
                np.stack([cast(np.ndarray, v.image) for v in ok]),  # set where no error
                np.stack([cast(np.ndarray, v.coeff) for v in ok]),
            )
            if ok
            else []
        )
        return [self._row(v, None if v.error else next(probs)) for v in views]

    def _row(self, v: Views, p: np.ndarray | None) -> dict:
        """The table row of one frame (probabilities None when it failed).

        A beam centre off the frame gives Beam Off Image (probability 1) whatever the
        network scores: the geometry says so.
        """
        placed = v.geometry
        beam = (None, None) if placed is None else placed.geometry.beam_center
        row: dict[str, object] = {
            "path": v.source,
            "frame": v.frame,
            "beam_x": beam[0],
            "beam_y": beam[1],
            "geometry_source": "" if placed is None else placed.source,
            "model": self.model_id,
        }
        warning = "" if placed is None else placed.warning
        if p is not None and not np.isfinite(p).all():
            v, p = replace(v, error=f"{v.source}: the model gave NaN or Inf probabilities"), None
        if p is None:
            row.update(dict.fromkeys(self.vocabulary), tags="", warning=warning, error=v.error)
            row["unfamiliarity"] = None
            return row
        if (
            placed is not None
            and not placed.geometry.beam_on_frame
            and OFF_IMAGE in self.vocabulary
        ):
            p = p.copy()
            p[self.vocabulary.index(OFF_IMAGE)] = 1.0
        row.update(zip(self.vocabulary, (float(x) for x in p)))
        tags = tags_above(self.vocabulary, p, self.thresholds)
        row.update(tags=";".join(tags), warning=warning, error="")
        row["unfamiliarity"] = v.unfamiliarity
        return row


def resolve_device(device: str) -> torch.device:
    """The torch device for "cpu", "cuda" (or "cuda:N") or "auto" (cuda when available)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device must be cpu, cuda or auto, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: no CUDA GPU is available to torch here")
    return torch.device(device)


def tag_items(
    items: Iterable[Item],
    predictor: Predictor,
    prepare: Callable[[Iterable[Item]], Iterator[list[Views]]],
    batch_size: int = 16,
    seen: Callable[[list[Views]], None] | None = None,
) -> Iterator[dict]:
    """Rows for every frame of every item, in order; failures become rows with an error.

    ``prepare`` is what ``with Workers(...) as prepare`` gives; ``seen`` is given each
    item's views as they come (:meth:`scattertag.prediction.series.SeriesPooling.see`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch: list[Views] = []
    for views in prepare(items):
        if seen is not None:
            seen(views)
        batch.extend(views)
        if len(batch) >= batch_size:
            yield from predictor.rows(batch)
            batch = []
    if batch:
        yield from predictor.rows(batch)


class Workers:
    """Context manager giving ``prepare(items) -> iterator of list[Views]``, in order
    (``with Workers(...) as prepare``; ``prepare.count_frames`` counts a file's frames).

    With ``workers`` = 0 it runs in this process; otherwise in a pool of processes
    (:func:`scattertag.parallel.worker_context`: forked on Linux once this process has set
    up the first geometry, so they start with it; spawned elsewhere), with at most
    ``ahead`` items in flight so memory stays bounded on long runs.

    A worker that dies on a file (a decoder crashing on corrupt data) or takes more than
    ``timeout`` seconds on one item (a library looping on corrupt metadata) costs only that
    item: the pool is restarted, the item gets an error row and the others are redone.

    ``ahead``: items sent to the workers before the oldest is awaited (at least 4 a worker);
    two model batches keep the workers busy while this process runs the model on one.
    """

    def __init__(
        self, view_spec, workers: int = 0, timeout: float = ITEM_TIMEOUT_S, ahead: int = 32
    ) -> None:
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.view_spec, self.workers, self.timeout = view_spec, workers, timeout
        self.ahead = max(int(ahead), 4 * workers)
        self._frame_counts: BoundedCache[int] = BoundedCache(4096)  # by location
        self.pool: ProcessPoolExecutor | None = None
        self.probe: ProcessPoolExecutor | None = None  # reads headers for per_frame
        self.local: Preparer | None = None
        self.handed_over = 0  # tasks sent with this process's ViewMakers
        self.context = worker_context()

    def __enter__(self) -> Workers:
        self.local = Preparer(self.view_spec)
        if self.workers > 0 and not self.forked:
            self._start()  # spawned workers take seconds to start: begin now
        return self

    @property
    def forked(self) -> bool:
        """True if worker processes are forked from this one (they inherit its set-up)."""
        return self.context.get_start_method() == "fork"

    def __call__(self, items: Iterable[Item]) -> Iterator[list[Views]]:
        """Views of each item, in order (:meth:`prepare`)."""
        return self.prepare(items)

    def _start(self) -> None:
        """A fresh pool whose workers start now (each submit to a not-yet-full pool spawns one)."""
        self.pool = ProcessPoolExecutor(
            self.workers,
            mp_context=self.context,
            initializer=start_worker,
            initargs=(self.view_spec, self.local if self.forked else None),
        )
        self.handed_over = 0
        with single_threaded_children():
            for _ in range(self.workers):
                self.pool.submit(int)

    def __exit__(self, exc_type, *exc) -> None:
        if self.probe is not None:
            terminate_pool(self.probe)
            self.probe = None
        if self.pool is not None:
            if exc_type is None:
                self.pool.shutdown(cancel_futures=True)
            else:  # Ctrl-C, SIGTERM or an error: do not wait for running tasks
                terminate_pool(self.pool)
            self.pool = None

    def prepare(self, items: Iterable[Item]) -> Iterator[list[Views]]:
        """Views of each item, in order."""
        assert self.local is not None  # inside the with block
        if self.workers == 0:
            yield from map(self.local, items)
            return
        # This process does the first frames itself until it has set up a ViewMaker (the
        # costly step) and gives it to the workers (forked now, or handed over).
        items = per_frame(items, self.count_frames)
        while not self.local.makers:
            item = next(items, None)
            if item is None:
                return
            yield self.local(item)
        if self.pool is None:
            self._start()
        window: deque = deque()
        for item in items:
            window.append((item, self._submit(item)))
            if len(window) >= self.ahead:
                yield self._collect(window)
        while window:
            yield self._collect(window)

    def count_frames(self, location: str) -> int:
        """Frames in the file at ``location``; with workers, read in a helper process (a
        library stuck on a corrupt header stops only it) and remembered while the file's
        size and time stay the same (items are split by geometry grouping, then here)."""
        if self.workers == 0:
            return count_frames(location)
        try:
            stat = os.stat(split_source(location)[0])
        except OSError:
            return self._probe_frames(location)  # the reader says what is wrong
        key = (location, stat.st_mtime_ns, stat.st_size)
        return self._frame_counts.get(key, lambda: self._probe_frames(location))

    def _probe_frames(self, location: str) -> int:
        """count_frames in the helper process."""
        if self.probe is None:
            self.probe = ProcessPoolExecutor(
                1, mp_context=self.context, initializer=worker_ignores_interrupts
            )
        try:
            return result_between_signals(self.probe.submit(count_frames, location), self.timeout)
        except (BrokenProcessPool, TimeoutError) as exc:
            terminate_pool(self.probe)
            self.probe = None
            if isinstance(exc, TimeoutError):
                raise _HeaderStuck(
                    f"{location}: reading the header took over {self.timeout:g} s"
                ) from None
            raise

    def _submit(self, item: Item) -> Future:
        """Send ``item`` to the pool (with this process's ViewMakers for the first few tasks)."""
        assert self.pool is not None and self.local is not None  # inside the with block
        # with the on-disk set-up cache, workers load a geometry (~40 ms) instead of
        # unpickling ~50 MB of ViewMaker per task
        cached = self.local.setup_cache is not None
        send = not (self.forked or cached) and self.handed_over < 2 * self.workers
        handover = (self.local.makers,) if send else ()
        self.handed_over += 1
        try:
            return self.pool.submit(prepare_in_worker, item, *handover)
        except BrokenProcessPool as exc:  # a worker died since: _collect restarts the pool
            future: Future = Future()
            future.set_exception(exc)
            return future

    def _collect(self, window: deque) -> list[Views]:
        """The oldest item's views; a dead or stuck worker costs only the item that caused it."""
        item, future = window.popleft()
        try:
            return result_between_signals(future, self.timeout)
        except (BrokenProcessPool, TimeoutError) as exc:
            failure = exc
        self._restart()
        if isinstance(failure, TimeoutError):
            views = _failed(item, f"reading and preparing took over {self.timeout:g} s")
        else:  # any in-flight item may have killed the worker: retry this one alone
            try:
                views = result_between_signals(self._submit(item), self.timeout)
            except (BrokenProcessPool, TimeoutError) as exc:
                self._restart()
                views = _failed(item, _crash_text(exc, self.timeout))
        for i in range(len(window)):  # the rest of the window was lost with the pool
            window[i] = (window[i][0], self._submit(window[i][0]))
        return views

    def _restart(self) -> None:
        """Replace a broken or stuck pool by a fresh one that is checked to start."""
        terminate_pool(self.pool)
        self._start()
        assert self.pool is not None
        try:
            result_between_signals(self.pool.submit(int), max(self.timeout, 60.0))
        except BrokenProcessPool as exc:
            raise RuntimeError(
                "a worker process died; a script calling predict(workers=N) must run it under "
                "\"if __name__ == '__main__':\" (worker processes are spawned), or use workers=0"
            ) from exc


def _crash_text(exc: BaseException, timeout: float) -> str:
    """Why a worker gave no result for one item."""
    if isinstance(exc, TimeoutError):
        return f"reading and preparing took over {timeout:g} s"
    return "the worker process crashed reading this file (corrupt data in a decoder?)"


def _failed(item: Item, why: str) -> list[Views]:
    """The error row of an item whose worker gave no result."""
    return [Views(item.source, item.frame, error=f"{item.source}: {why}")]


def per_frame(items: Iterable[Item], count: Callable[[str], int] = count_frames) -> Iterator[Item]:
    """Items with one item per frame of each multi-frame file, so that workers share long stacks.

    ``count(location)`` gives a file's frame count; if it fails, the item stays whole and
    the worker that reads it reports the problem in its row.
    """
    for item in items:
        try:
            n = 1 if item.error or item.frame is not None else count(item.location)
        except _HeaderStuck as exc:
            item, n = replace(item, error=str(exc)), 1
        except Exception:
            n = 1
        # n = 0 (an empty stack): the item stays whole, and reading it gives its error row
        yield from [item] if n <= 1 else (replace(item, frame=i) for i in range(n))


class _HeaderStuck(Exception):
    """Reading a file's header took longer than the item timeout."""
