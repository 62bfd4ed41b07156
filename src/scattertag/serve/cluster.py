"""Tag items from many concurrent callers on a Dask cluster: ``scattertag serve --dask``.

The same face as :class:`~scattertag.serve.tagger.Tagger` (``await tagger.rows(item)``),
with the work done by :func:`scattertag.prediction.distributed.tag_chunk`, the task of
``scattertag predict --dask``: a worker reads the files itself, makes the views with a
ViewMaker kept per geometry and runs the model on the whole chunk. Callers' items wait in
a queue; whenever fewer than ``threads + 1`` tasks are in flight (``threads``: the
cluster's worker threads), everything queued (at most ``batch_size`` items) is grouped by
geometry (:func:`~scattertag.prediction.grouping.geometry_chunks`) and sent, one task a
chunk. Items that arrive while every worker is busy therefore share the next task's
network batch. The rows go back to the callers; the service stores and publishes them as
it does the local tagger's.

Workers open items by their path: uploads are saved under the service's ``STATE/uploads``
(an absolute path), so the workers must see that folder at the same path. A
``LocalCluster`` (``--dask local``) shares this machine's file system; a remote cluster
needs a shared one. Every worker loads the model folder (``--model``, default the shipped
tagger) when the service starts (``client.run``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any, cast

from scattertag.prediction.distributed import dask_scheduler, set_up_worker, tag_chunk
from scattertag.prediction.grouping import geometry_chunks
from scattertag.prediction.sources import Item
from scattertag.serve.tagger import Incoming, Job, Outcome, Timings, add, arrive, settle

log = logging.getLogger("scattertag.serve")


class ClusterError(RuntimeError):
    """The cluster could not tag a chunk (a worker died, the scheduler went away): HTTP 503."""


class ClusterTagger:
    """``await tagger.rows(item)`` -> the rows of every frame of ``item``, tagged on Dask.

    ``address``: a scheduler (``tcp://host:8786``) or ``"local"`` (a LocalCluster of
    ``workers`` single-threaded processes, default one per usable core). Use as
    ``async with ClusterTagger(...) as tagger`` inside a running event loop.
    """

    def __init__(
        self,
        address: str,
        model: str | Path | None = None,
        workers: int = 0,
        batch_size: int = 16,
        symmetries: int = 1,
        device: str = "cpu",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.address, self.workers, self.batch_size = address, workers, batch_size
        self.model = None if model is None else str(Path(model).resolve())
        self.symmetries, self.device = symmetries, device
        self.batches: list[int] = []  # frames of the last tasks, for /api/health and tests

    async def __aenter__(self) -> ClusterTagger:
        from distributed import Client

        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._tasks: set[asyncio.Task] = set()  # the sender and the tasks in flight
        self._cluster = contextlib.ExitStack()
        self._client: Any = None  # a distributed.Client once connected
        scheduler = await asyncio.to_thread(
            self._cluster.enter_context, dask_scheduler(self.address, self.workers or None)
        )
        try:
            self._client = await Client(scheduler, asynchronous=True)
            threads = sum((await self._client.nthreads()).values())
            if not threads:
                raise ValueError(f"Dask scheduler {self.address} has no workers")
            # every worker loads the model now, not inside its first task
            await self._client.run(set_up_worker, self.model, self.device, self.symmetries)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        self._free = asyncio.Semaphore(threads + 1)  # tasks in flight: one waiting at a time
        self._keep(asyncio.create_task(self._send()))
        log.info("tagging on Dask at %s (%d worker threads)", scheduler, threads)
        return self

    async def __aexit__(self, *exc) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while not self._queue.empty():  # callers still waiting hear that the tagger closed
            self._queue.get_nowait().future.cancel()
        if self._client is not None:
            await self._client.close()
        await asyncio.to_thread(self._cluster.close)

    def _keep(self, task: asyncio.Task) -> None:
        """Hold a task until it ends (cancelled at exit)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def rows(self, item: Incoming, timings: Timings | None = None) -> list[dict]:
        """Output rows (``Predictor.rows`` format) of every frame of ``item``, in order.

        ``item`` may be a function giving the item, run first in a thread (no rows if it
        gives None). ``timings`` gets the ms of each step: arrive (that function), queue
        (waiting for a free worker) and cluster (the task: reading, views and network on
        a worker, and the round trip).
        """
        job = Job(item, asyncio.get_running_loop().create_future(), timings)
        if not isinstance(item, Item):
            given = await asyncio.to_thread(arrive, job)
            if given is None:
                return []
            job.item = given
        self._queue.put_nowait(job)
        return await job.future

    async def _send(self) -> None:
        """Queued jobs, grouped by geometry, as tasks whenever a worker is free."""
        while True:
            await self._free.acquire()
            jobs = [await self._queue.get()]
            while len(jobs) < self.batch_size and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            items = [cast(Item, j.item) for j in jobs]  # rows() queues items, not functions
            chunks = geometry_chunks(list(enumerate(items)), self.batch_size)
            for i, chunk in enumerate(chunks):
                if i:
                    await self._free.acquire()
                self._keep(asyncio.create_task(self._run([(n, jobs[n]) for n, _ in chunk], chunk)))

    async def _run(self, jobs: list[tuple[int, Job]], chunk: list[tuple[int, Item]]) -> None:
        """One task: the chunk on a worker, its rows to their jobs' callers."""
        sent = time.perf_counter()
        for _, job in jobs:
            add(job.timings, "queue", sent - job.start)
        try:
            future = self._client.submit(
                tag_chunk, chunk, self.model, self.device, self.symmetries, pure=False
            )
            numbered = await future
        except asyncio.CancelledError:  # the tagger is closing: so are its callers
            for _, job in jobs:
                job.future.cancel()
            raise
        except Exception as exc:  # a worker failed or died: its callers hear why
            error = ClusterError(f"the Dask cluster at {self.address} failed: {exc!r}")
            settle([(job, error) for _, job in jobs])
            return
        finally:
            self._free.release()
        self.batches = [*self.batches[-99:], len(numbered)]
        rows: dict[int, list[dict]] = {n: [] for n, _ in jobs}
        for n, row in numbered:
            rows[n].append(row)
        done = time.perf_counter()
        outcome: list[Outcome] = []
        for n, job in jobs:
            add(job.timings, "cluster", done - sent)
            outcome.append((job, rows[n]))
        settle(outcome)
