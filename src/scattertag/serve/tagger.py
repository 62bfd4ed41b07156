"""Tag items from many concurrent callers with one model: prepare in a pool, batch the network.

Each caller's item is read and turned into views in a pool (threads with one
:class:`~scattertag.prediction.prepare.Preparer` each, or spawned processes running
:func:`~scattertag.prediction.prepare.prepare_in_worker`), exactly as ``scattertag.predict``
does. The views then wait in a queue; one loop takes whatever is queued (up to
``batch_size`` frames, waiting at most ``max_wait_s`` for more while items are still
being prepared, not at all when none is) and runs :meth:`Predictor.rows` on the batch in
a single model thread, with the network traced (:func:`traced`) so that it does not wait
for the GIL between layers. As in ``scattertag.predict``, numpy/scipy run one thread per
caller and torch gets the cores the preparing threads or processes leave. Memory is
bounded: at most ``2 x pool size`` items are being prepared and ``4 x batch_size`` frames
queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import multiprocessing
import threading
import time
import warnings
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

import torch

from scattertag.parallel import limited_threads, single_threaded_children, worker_split
from scattertag.prediction.pipeline import Predictor
from scattertag.prediction.prepare import Preparer, Views, prepare_in_worker, start_worker
from scattertag.prediction.sources import Item

log = logging.getLogger("scattertag.serve")


def traced(predictor: Predictor) -> Predictor:
    """A copy of ``predictor`` whose network is traced (TorchScript) from a random batch.

    A traced forward pass runs in C++ without taking the GIL between layers, so the event
    loop and the preparing threads no longer stall it at every layer (the eager network
    waits for the GIL after each one). It runs the same operations: its probabilities are
    checked here to equal the eager network's on batches of 2 and 1; if they do not, or
    tracing fails, the eager network is kept.
    """
    spec, device = predictor.view_spec, predictor.device
    seed = torch.Generator().manual_seed(0)
    batch = tuple(
        torch.rand((2, *shape), generator=seed).to(device)
        for shape in (spec.image_shape, spec.coeff_shape)
    )
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the input shape check
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.10+: "use export"
            network = torch.jit.trace(predictor.model, batch, check_trace=False)
            same = all(
                torch.equal(predictor.model(*x), network(*x))
                for x in (batch, tuple(t[:1] for t in batch))
            )
    except Exception as exc:  # a network tracing cannot follow: run it as it is
        log.warning("the network runs untraced (tracing failed: %s)", exc)
        return predictor
    if not same:
        log.warning("the network runs untraced (the traced one gave other probabilities)")
        return predictor
    copied = copy.copy(predictor)
    copied.model = network
    return copied


#: Milliseconds a request spent in each step (``Server-Timing`` of the API's answers).
Timings = dict[str, float]


def add(timings: Timings | None, step: str, seconds: float) -> None:
    """Add ``seconds`` to ``timings[step]`` (in ms); nothing when ``timings`` is None."""
    if timings is not None:
        timings[step] = timings.get(step, 0.0) + 1e3 * seconds


class Tagger:
    """``await tagger.rows(item)`` -> the predictor's output rows of every frame of ``item``.

    Use as ``async with Tagger(...) as tagger`` inside a running event loop.
    """

    def __init__(
        self,
        predictor: Predictor,
        workers: int = 0,
        threads: int = 2,
        batch_size: int = 16,
        max_wait_s: float = 0.03,
    ) -> None:
        self.predictor = predictor
        self.workers, self.threads = workers, threads
        self.batch_size, self.max_wait_s = batch_size, max_wait_s
        self._local = threading.local()
        self._first: Preparer | None = None  # the first thread's; later threads copy its set-ups
        self._handover = threading.Lock()
        self.batches: list[int] = []  # sizes of the last network batches, for tests and stats
        self._preparing = 0  # items handed to the pool and not back yet

    async def __aenter__(self) -> Tagger:
        spec = self.predictor.view_spec
        self._limits = contextlib.ExitStack()  # one BLAS thread a caller; torch the rest
        _, model_threads = worker_split(self.workers or self.threads)
        self._limits.enter_context(limited_threads(1, model_threads))
        self._pool: Executor
        if self.workers > 0:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_worker,
                initargs=(spec,),
            )
            with single_threaded_children():
                for _ in range(self.workers):
                    self._pool.submit(int)
        else:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="prepare")
        self._model = ThreadPoolExecutor(1, thread_name_prefix="model")
        self._network = traced(self.predictor)
        self._slots = asyncio.Semaphore(2 * max(self.workers, self.threads))
        self._warm = asyncio.Lock()  # the first item is prepared alone: one set-up, then copies
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=4 * self.batch_size)
        self._loop_task = asyncio.create_task(self._run_model())
        return self

    async def __aexit__(self, *exc) -> None:
        self._loop_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._loop_task
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._model.shutdown(wait=False, cancel_futures=True)
        self._limits.close()

    def _prepare_here(self, item: Item) -> list[Views]:
        """Views of ``item`` with this thread's own Preparer (a ViewMaker serves one thread).

        A geometry is set up once, not once per thread: a new thread takes the first
        thread's set-up from the disk cache (a memory map of the file it wrote: ~1 ms), or
        without one starts with copies of the first thread's ViewMakers (as predict hands
        them to workers; a deep copy of ~45 MB, ~0.1 s).
        """
        preparer = getattr(self._local, "preparer", None)
        if preparer is None:
            preparer = self._local.preparer = Preparer(self.predictor.view_spec)
            with self._handover:
                if self._first is None:
                    self._first = preparer
                elif preparer.setup_cache is None:
                    with contextlib.suppress(RuntimeError):  # copied while in use: set up anew
                        preparer.adopt(copy.deepcopy(self._first.makers))
        return preparer(item)

    def _warmed(self) -> bool:
        """Whether a ViewMaker is set up that later threads can copy (not merely being set up)."""
        return self._first is not None and bool(self._first.makers)

    async def views(self, item: Item) -> list[Views]:
        """The views of every frame of ``item``, prepared in the pool."""
        work = prepare_in_worker if self.workers > 0 else self._prepare_here
        if self.workers == 0 and not self._warmed():
            async with self._warm:  # callers wait while the first item sets up its geometry
                if not self._warmed():
                    return await self._prepare(work, item)
        async with self._slots:
            return await self._prepare(work, item)

    async def _prepare(self, work, item: Item) -> list[Views]:
        """``work(item)`` in the pool, counted in ``_preparing`` while it runs."""
        self._preparing += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work, item)
        finally:
            self._preparing -= 1

    async def rows(self, item: Item, timings: Timings | None = None) -> list[dict]:
        """Output rows (``Predictor.rows`` format) of every frame of ``item``, in order.

        ``timings`` gets the ms of each step: prepare (waiting for the pool and in it),
        network-wait (queued until its batch ran) and network (the batch), of the item's
        last frame.
        """
        start = time.perf_counter()
        views = await self.views(item)
        add(timings, "prepare", time.perf_counter() - start)
        loop = asyncio.get_running_loop()
        futures = []
        for v in views:
            future = loop.create_future()
            await self._queue.put((v, future, timings, time.perf_counter()))
            futures.append(future)
        return list(await asyncio.gather(*futures))

    async def _run_model(self) -> None:
        """Forever: collect a batch from the queue, run the network on it, hand out rows."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.batch_size:
                if self._queue.empty():
                    timeout = deadline - loop.time()
                    if timeout <= 0 or not self._preparing:  # nothing more is on its way
                        break
                    try:
                        batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                    except TimeoutError:
                        break
                else:
                    batch.append(self._queue.get_nowait())
            self.batches = [*self.batches[-99:], len(batch)]
            began = time.perf_counter()
            try:
                rows = await loop.run_in_executor(
                    self._model, self._network.rows, [v for v, *_ in batch]
                )
            except Exception as exc:  # the model failed: every caller of this batch hears why
                for _, future, *_ in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            ended = time.perf_counter()
            for (_, future, timings, queued), row in zip(batch, rows):
                if timings is not None:
                    timings["network-wait"] = 1e3 * (began - queued)
                    timings["network"] = 1e3 * (ended - began)
                if not future.done():
                    future.set_result(row)
