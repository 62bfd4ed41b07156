"""Tagging on a Dask cluster: ``scattertag predict --dask ADDRESS|local``.

The frames of a run are cut into *windows* of consecutive frames. Inside a window, frames
are grouped by geometry (setup and mask file) and each group is cut into chunks of at most
``batch_size`` frames; a chunk is one Dask task. Its worker reads the files itself (a
shared file system, not frames shipped through the scheduler), makes the views with a
ViewMaker set up once per geometry and process (or loaded from the on-disk set-up cache,
``scattertag.features.cache``), runs the model on the whole chunk and returns the rows.
Rows are yielded in input order, window by window, while the next window's tasks run:
at most two windows are in flight, so memory is bounded whatever the number of files.

Every worker needs scattertag installed and one thread (``dask worker --nthreads 1``;
``local`` starts a ``LocalCluster`` of single-threaded processes, one per usable core,
without Dask's statistical profiler and with its monitors slowed:
:func:`scattertag.parallel.local_cluster`).
When a run starts, every worker imports torch and loads the model at once
(``client.run``), not inside its first task. The rows equal those of a local run: the
same reader, views and model, and the same series pooling (each window's frames whose
centre the image gives are settled by set-up once its rows are in, and those whose centre
changed are tagged again: :mod:`scattertag.prediction.series`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

from scattertag.parallel import limit_threads, local_cluster, reuse_freed_memory
from scattertag.prediction.grouping import geometry_chunks
from scattertag.prediction.prepare import Preparer
from scattertag.prediction.series import SeriesPooling
from scattertag.prediction.sources import Item


@contextmanager
def dask_scheduler(address: str, workers: int | None = None) -> Iterator[str]:
    """The scheduler address of ``address`` ("local": that of a
    :func:`~scattertag.parallel.local_cluster` of ``workers`` processes, closed on exit)."""
    if address == "local":
        with local_cluster(workers) as cluster:
            yield cluster.scheduler_address
    else:
        yield address


@contextmanager
def dask_client(address: str, workers: int | None = None) -> Iterator:
    """A ``distributed.Client`` for ``address`` (:func:`dask_scheduler`), closed on exit."""
    from distributed import Client

    with dask_scheduler(address, workers) as scheduler, Client(scheduler) as client:
        if not client.nthreads():
            raise ValueError(f"Dask scheduler {address} has no workers")
        yield client


def tag_on_dask(
    items: Iterable[Item],
    client,
    model_dir: str | Path | None,
    batch_size: int = 16,
    window: int | None = None,
    device: str = "cpu",
    symmetries: int = 1,
    series: bool = True,
) -> Iterator[dict]:
    """Rows for every frame of ``items``, in input order, tagged on ``client``'s workers.

    ``window``: frames grouped together (default 64 per worker thread); ``symmetries``:
    as for :class:`scattertag.prediction.pipeline.Predictor`.
    """
    from distributed import wait

    from scattertag.prediction.pipeline import per_frame

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    threads = max(1, sum(client.nthreads().values()))
    window = window or 64 * threads
    model = None if model_dir is None else str(model_dir)
    client.run(set_up_worker, model, device, symmetries)  # every worker loads it, together

    def submit(part: list[tuple[int, Item]]) -> tuple[list[tuple[int, Item]], list]:
        futures = [
            client.submit(tag_chunk, chunk, model, device, symmetries, True, pure=False)
            for chunk in geometry_chunks(part, batch_size)
        ]
        return part, futures

    def owned(part: list[tuple[int, Item]], futures: list) -> list[list[dict]]:
        """Each item's rows (the items of ``part`` in order); their estimates kept."""
        wait(futures)
        at = {number: k for k, (number, _) in enumerate(part)}
        rows: list[list[dict]] = [[] for _ in part]
        for number, row, estimated in sorted(
            (t for future in futures for t in future.result()), key=lambda t: t[0]
        ):
            pooling.keep(row["path"], row["frame"], estimated)
            rows[at[number]].append(row)
        return rows

    def collect(window: tuple[list[tuple[int, Item]], list]) -> Iterator[dict]:
        part, futures = window
        rows = owned(part, futures)
        again = pooling.revise([item for _, item in part], rows)
        if again:
            redo = [(k, again[k]) for k in sorted(again)]
            fresh = owned(*submit(redo))
            for (k, _), item_rows in zip(redo, fresh):
                rows[k] = item_rows
        return (row for item_rows in rows for row in item_rows)

    pooling = SeriesPooling(series)
    numbered = enumerate(per_frame(pooling.offer(items)))
    pending: deque = deque()  # windows in flight: (numbered items, futures)
    while part := list(islice(numbered, window)):
        pending.append(submit(part))
        if len(pending) >= 2:
            yield from collect(pending.popleft())
    while pending:
        yield from collect(pending.popleft())


_WORKER: dict = {}


def set_up_worker(model_dir: str | None, device: str = "cpu", symmetries: int = 1) -> None:
    """On a worker: its Predictor and Preparer, made on first use and kept in the process.

    One BLAS/OpenMP/torch thread (parallelism comes from the worker processes). Run on
    every worker when a run starts (``client.run``), so all of them import torch and load
    the model at once instead of each paying it inside its first task (seconds).
    """
    from scattertag.prediction.pipeline import Predictor

    key = (model_dir, device, symmetries)
    if _WORKER.get("key") != key:
        limit_threads(1)
        reuse_freed_memory()
        predictor = Predictor(model_dir, device=device, symmetries=symmetries)
        _WORKER.update(key=key, predictor=predictor, preparer=Preparer(predictor.view_spec))


def tag_chunk(
    chunk: list[tuple[int, Item]],
    model_dir: str | None,
    device: str = "cpu",
    symmetries: int = 1,
    estimates: bool = False,
) -> list:
    """On a worker: (number, row) for every frame of the numbered items of ``chunk``;
    with ``estimates``, (number, row, the frame's own beam-centre estimate or None)
    (``Views.estimated``, for the series pooling).

    The model and a Preparer (ViewMakers by geometry) are kept in the worker process
    between tasks; the model runs once on the whole chunk.
    """
    set_up_worker(model_dir, device, symmetries)
    predictor, preparer = _WORKER["predictor"], _WORKER["preparer"]
    numbers, views = [], []
    for number, item in chunk:
        frames = preparer(item)
        numbers += [number] * len(frames)
        views += frames
    rows = predictor.rows(views)
    if estimates:
        return [(n, row, v.estimated) for n, row, v in zip(numbers, rows, views)]
    return list(zip(numbers, rows))
