"""Tag items from many concurrent callers with one model: prepare in a pool, batch the network.

A pipeline of threads, so that the network runs on one batch while the next frames are
being prepared. Each caller's item is read and turned into views in a pool of threads,
exactly as ``scattertag.predict`` does: each thread runs its own
:class:`~scattertag.prediction.prepare.Preparer`, or (``workers``) saves the upload and
hands the item to a free worker process (:class:`WorkerProcess`, forked at start; two
threads a worker) and waits, so that preparing runs outside this process's GIL; the pool
puts the views straight into a :class:`Prepared` queue. One model thread takes whatever
is there as a batch (up to ``batch_size`` frames), waiting at most ``max_wait_s`` for the
frames of items whose preparing was under way when the batch's first frame came (never for
items still waiting for a thread or a worker: that wait made the callers move in
lock-step, the pool idle while the network ran), runs :meth:`Predictor.rows` on it with
the network traced (:func:`traced`), and hands the rows of every finished item to the
event loop in one call. The preparing threads and processes run at a lower priority
(:data:`PREPARING_NICENESS`), so the short steps the callers wait for go first. As in
``scattertag.predict``, numpy/scipy run one thread per caller and torch gets the cores
the preparing threads or processes leave. Memory is bounded: at most ``2 x pool size + 2 x
batch_size`` items are between arrival and answer, and at most ``4 x batch_size`` prepared
frames wait for the network (a preparing thread waits for room).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import torch

from scattertag.parallel import (
    limited_threads,
    single_threaded_children,
    worker_context,
    worker_split,
)
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


#: How much lower the preparing threads' scheduling priority is (nice) than the service's
#: other threads'. The callers wait for the event loop and the model thread, which are
#: short; preparing is long and its threads always have work: run ahead of them, the
#: network and the answers no longer wait for a core behind preparing (near idle with one
#: other busy process: a batch of 2 in 12-14 instead of 22-24 ms, docs/throughput.md).
PREPARING_NICENESS = 5


def run_behind(niceness: int) -> None:
    """Lower the calling thread's scheduling priority by ``niceness`` (Linux, where each
    thread has its own nice value; nothing elsewhere or if refused)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            thread = threading.get_native_id()
            os.setpriority(
                os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + niceness
            )


class WorkerProcess:
    """One preparing process, fed through a pipe by one thread of the service at a time:
    ``worker(item)`` -> the item's views, prepared there, outside the service's GIL.

    Forked where the platform allows it (:func:`scattertag.parallel.worker_context`) when
    the tagger starts, before its threads: it begins with this process's imports at no cost.
    (Spawned workers spent ~1.5 s of CPU importing numpy, scipy and the readers after the
    service already answered, counted in the first requests' time: with one client and
    then at 15.8-16.0 CPU ms a frame alike, spawned or forked, ``docs/throughput.md``.)
    An item goes as it is (a path and its geometry options), views come back (~0.3 MB a
    frame). Its first geometry it reads from the set-up cache on disk when another process
    has set it up, or sets it up itself. If it dies (a decoder crashing on corrupt data),
    the item it had gets an error row and its threads prepare in the service from then on.
    """

    def __init__(self, context, view_spec, others: list[WorkerProcess]) -> None:
        self.conn, theirs = context.Pipe()
        for end in (self.conn, theirs):
            roomy(end)
        inherited = [w.conn for w in others] + [self.conn] if fork(context) else []
        self.process = context.Process(
            target=run_worker, args=(theirs, view_spec, inherited), name="prepare", daemon=True
        )
        self.process.start()
        theirs.close()
        self.alive = True

    def __call__(self, item: Item) -> list[Views]:
        """The views of every frame of ``item``, prepared in the worker."""
        try:
            self.conn.send(item)
            result = self.conn.recv()
        except (EOFError, OSError):
            self.alive = False
            self.process.join(1)
            error = f"{item.source}: the preparing process exited ({self.process.exitcode})"
            return [Views(item.source, item.frame, error=error)]
        if isinstance(result, BaseException):
            raise result
        return result

    def stop(self) -> None:
        """End the process now (an item it prepares is dropped)."""
        self.process.terminate()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()


#: Bytes a worker's pipe buffers each way (a socket pair; the kernel caps it at
#: ``net.core.wmem_max``): a frame's views (~0.3 MB at 256 x 256) go in one write instead of
#: several, each a wake-up of the reader and of the blocked writer (~125 us less CPU a
#: transfer on the reading side, ``docs/throughput.md``).
PIPE_BUFFER_BYTES = 1 << 20


def roomy(conn: Connection) -> None:
    """Give the socket under ``conn`` :data:`PIPE_BUFFER_BYTES` of buffer each way (where it is
    a socket and the kernel allows it; nothing otherwise)."""
    fd = os.dup(conn.fileno())
    try:
        sock = socket.socket(fileno=fd)  # owns fd from here on
    except OSError:  # not a socket
        os.close(fd)
        return
    with sock, contextlib.suppress(OSError):
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, PIPE_BUFFER_BYTES)


def warm_up(view_spec) -> None:
    """Compute here what every forked worker would otherwise compute for its first item:
    the beam-centre check's code digest (importing and hashing its modules) and the Bessel
    zeros of ``view_spec`` (0.1-0.4 s of CPU a worker, profiled)."""
    from scattertag.features.fourier_bessel import bessel_zeros
    from scattertag.prediction.beam import check_code

    check_code()
    bessel_zeros(view_spec.orders, view_spec.zeros)


def fork(context) -> bool:
    """Whether ``context`` starts processes by forking this one."""
    return context.get_start_method() == "fork"


def run_worker(conn: Connection, view_spec, inherited: list[Connection]) -> None:
    """A :class:`WorkerProcess`: items from ``conn``, their views back, until the service
    closes it; ``inherited``: the service's ends of the pipes, which a forked child holds
    too (closed, so that a worker sees the service go)."""
    for other in inherited:
        other.close()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the service's handler, if forked
    start_worker(view_spec)
    run_behind(PREPARING_NICENESS)
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result: list[Views] | BaseException = prepare_in_worker(item)
        except Exception as exc:  # the Preparer turns a file's problems into rows: a bug
            result = exc
        try:
            conn.send(result)
        except Exception as exc:  # an error that cannot be pickled
            conn.send(RuntimeError(f"{type(exc).__name__} sending {result!r:.200}"))


#: Milliseconds a request spent in each step (``Server-Timing`` of the API's answers).
Timings = dict[str, float]

#: What a caller hands the tagger: an item, or a function that gives it (None: nothing to
#: tag), run first in a preparing thread: saving an upload there costs no extra thread
#: hand-off.
Incoming = Item | Callable[[], Item | None]


def arrive(job: Job) -> Item | None:
    """The item of ``job``, running its function first if it has one (``arrive`` timed)."""
    if isinstance(job.item, Item):
        return job.item
    item = job.item()
    now = time.perf_counter()
    add(job.timings, "arrive", now - job.start)
    job.start = now  # "prepare" starts here
    return item


def add(timings: Timings | None, step: str, seconds: float) -> None:
    """Add ``seconds`` to ``timings[step]`` (in ms); nothing when ``timings`` is None."""
    if timings is not None:
        timings[step] = timings.get(step, 0.0) + 1e3 * seconds


@dataclass(eq=False)
class Job:
    """One caller's item on its way through the pipeline; ``future`` (of the caller's event
    loop) gets the rows of all its frames, in order, once the last one has been through
    the network."""

    item: Incoming
    future: asyncio.Future
    timings: Timings | None
    start: float = field(default_factory=time.perf_counter)
    rows: list[dict] = field(default_factory=list)
    left: int = 0  # frames not through the network yet
    ended: float | None = None  # when its last frame came out of the network


@dataclass
class Frame:
    """One frame's views, the job it belongs to, its place in the job, when it was queued and
    which jobs were being prepared then (a batch that starts with it may wait for those)."""

    views: Views
    job: Job
    index: int
    queued: float
    awaits: frozenset[Job]


#: A job and its rows, or the error that stopped it.
Outcome = tuple[Job, list[dict] | BaseException]


class Prepared:
    """Thread-safe queue of prepared frames, taken by the model thread in batches.

    ``under_way(job)`` when a job's preparing starts, ``put(job, views)`` when it is done.
    :meth:`take` waits for a first frame, then at most ``wait_s`` for the frames of jobs
    that were under way when that frame was queued (not for jobs started later, nor for
    jobs still waiting for a preparing thread: by then the network can run on one batch
    while those are prepared). Bounded: ``put`` waits while ``most`` frames are queued (a
    job's frames are queued together, however many there are).
    """

    def __init__(self, most: int) -> None:
        self.most = most
        self._frames: list[Frame] = []
        self._under_way: set[Job] = set()
        self._changed = threading.Condition()
        self._closed = False

    def under_way(self, job: Job) -> None:
        """Say that ``job`` is being prepared: a batch may wait for its frames."""
        with self._changed:
            self._under_way.add(job)

    def put(self, job: Job, views: list[Views]) -> None:
        """Queue the views of ``job``'s frames (waiting while the queue is full)."""
        with self._changed:
            while len(self._frames) >= self.most and not self._closed:
                self._changed.wait()
            job.rows, job.left = [{} for _ in views], len(views)
            self._under_way.discard(job)
            now, others = time.perf_counter(), frozenset(self._under_way)
            self._frames += [Frame(v, job, i, now, others) for i, v in enumerate(views)]
            self._changed.notify_all()

    def forget(self, job: Job) -> None:
        """``job`` will not be put (its preparing failed)."""
        with self._changed:
            self._under_way.discard(job)
            self._changed.notify_all()

    def take(self, size: int, wait_s: float) -> list[Frame]:
        """Up to ``size`` frames, in order (empty once closed)."""
        with self._changed:
            while not self._frames and not self._closed:
                self._changed.wait()
            if self._closed:
                return []
            awaited = self._frames[0].awaits
            deadline = time.monotonic() + wait_s
            while len(self._frames) < size and awaited & self._under_way and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            batch, self._frames = self._frames[:size], self._frames[size:]
            self._changed.notify_all()  # room for a waiting put
            return batch

    def close(self) -> None:
        """Wake every waiting thread; :meth:`take` returns nothing from now on."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()


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

    async def __aenter__(self) -> Tagger:
        spec = self.predictor.view_spec
        self._limits = contextlib.ExitStack()  # one BLAS thread a caller; torch the rest
        _, model_threads = worker_split(self.workers or self.threads)
        self._limits.enter_context(limited_threads(1, model_threads))
        self._idle: queue.SimpleQueue[WorkerProcess] = queue.SimpleQueue()
        self._processes: list[WorkerProcess] = []
        if self.workers > 0:  # forked before this tagger starts any thread
            context = worker_context()
            if fork(context):
                warm_up(spec)
            with single_threaded_children():
                for _ in range(self.workers):
                    self._processes.append(WorkerProcess(context, spec, self._processes))
            for worker in self._processes:
                self._idle.put(worker)
        self._ready = False  # a worker has prepared a frame: its geometry is set up
        # with workers, two threads a worker: one saves the next upload while the other
        # waits for the worker's views
        threads = 2 * self.workers or self.threads
        self._pool = started(threads, "prepare")
        self._network = traced(self.predictor)
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(2 * max(self.workers, self.threads) + 2 * self.batch_size)
        self._warm = asyncio.Lock()  # the first item is prepared alone: one set-up, then copies
        self._prepared = Prepared(4 * self.batch_size)
        self._jobs: set[Job] = set()  # on their way, for cancelling at exit
        self._model = threading.Thread(target=self._run_model, name="model", daemon=True)
        self._model.start()
        return self

    async def __aexit__(self, *exc) -> None:
        for job in self._jobs:  # callers still waiting hear that the tagger closed
            job.future.cancel()
        self._prepared.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self._model.join)
        for worker in self._processes:
            await asyncio.to_thread(worker.stop)
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
            run_behind(PREPARING_NICENESS)
            with self._handover:
                if self._first is None:
                    self._first = preparer
                elif preparer.setup_cache is None:
                    with contextlib.suppress(RuntimeError):  # copied while in use: set up anew
                        preparer.adopt(copy.deepcopy(self._first.makers))
        return preparer(item)

    def _warmed(self) -> bool:
        """Whether a ViewMaker is set up that later threads can copy (not merely being set
        up), or, with workers, that a worker has prepared a frame (its set-up is on disk)."""
        return self._ready or (self._first is not None and bool(self._first.makers))

    async def rows(self, item: Incoming, timings: Timings | None = None) -> list[dict]:
        """Output rows (``Predictor.rows`` format) of every frame of ``item``, in order.

        ``item`` may be a function giving the item, run first in a preparing thread (no
        rows if it gives None). ``timings`` gets the ms of each step: arrive (waiting for
        the pool and that function), prepare (waiting for the pool and in it), network-wait
        (queued until its batch ran), network (the batch), of the item's last frame, and
        back (from the network's end until the caller runs again on the event loop).
        """
        job = Job(item, self._loop.create_future(), timings)
        self._jobs.add(job)
        try:
            async with self._slots:
                rows = await self._run(job)
            if job.ended is not None:
                add(job.timings, "back", time.perf_counter() - job.ended)
            return rows
        finally:
            self._jobs.discard(job)

    async def _run(self, job: Job) -> list[dict]:
        """Send ``job`` down the pipeline; its rows."""
        if self._warmed():
            self._pool.submit(self._prepare_job, job)
        else:
            async with self._warm:  # callers wait while the first item sets up its geometry
                if self._warmed():
                    self._pool.submit(self._prepare_job, job)
                else:
                    await self._loop.run_in_executor(self._pool, self._prepare_job, job)
        return await job.future

    def _prepare_job(self, job: Job) -> None:
        """In a preparing thread: the views of ``job``'s item, queued for the network."""
        outcome: list[Outcome] = []
        try:
            item = arrive(job)
        except Exception as exc:  # saving an upload failed: its caller hears why
            item, outcome = None, [(job, exc)]
        if item is None:  # nothing to tag, or the error above
            self._loop.call_soon_threadsafe(settle, outcome or [(job, [])])
            return
        with self._worker() as worker:
            self._prepared.under_way(job)
            views: list[Views] | BaseException
            try:
                prepared = self._prepare_here(item) if worker is None else worker(item)
            except Exception as exc:  # the Preparer turns a file's problems into rows: a bug
                views = exc
            else:
                views = prepared
                self._ready = self._ready or any(v.image is not None for v in prepared)
        self._put(job, views)

    @contextlib.contextmanager
    def _worker(self) -> Iterator[WorkerProcess | None]:
        """A free worker process, waiting for one (None without workers, or if it died: the
        thread prepares the item itself)."""
        if not self._processes:
            yield None
            return
        worker = self._idle.get()
        try:
            yield worker if worker.alive else None
        finally:
            self._idle.put(worker)

    def _put(self, job: Job, views: list[Views] | BaseException) -> None:
        """Queue ``job``'s views for the network, or tell its caller why there are none."""
        add(job.timings, "prepare", time.perf_counter() - job.start)
        if isinstance(views, BaseException):
            self._prepared.forget(job)
            outcome: list[Outcome] = [(job, views)]
            self._loop.call_soon_threadsafe(settle, outcome)
        else:
            self._prepared.put(job, views)

    def _run_model(self) -> None:
        """The model thread: batches from the queue through the network, rows to their callers."""
        while batch := self._prepared.take(self.batch_size, self.max_wait_s):
            self.batches = [*self.batches[-99:], len(batch)]
            began = time.perf_counter()
            try:
                rows = self._network.rows([f.views for f in batch])
            except Exception as exc:  # the model failed: every caller of this batch hears why
                failed: list[Outcome] = [(job, exc) for job in {f.job: None for f in batch}]
                self._loop.call_soon_threadsafe(settle, failed)
                continue
            ended = time.perf_counter()
            finished: list[Outcome] = []
            for f, row in zip(batch, rows):
                f.job.rows[f.index] = row
                f.job.left -= 1
                if f.job.left == 0:
                    add(f.job.timings, "network-wait", began - f.queued)
                    add(f.job.timings, "network", ended - began)
                    f.job.ended = ended
                    finished.append((f.job, f.job.rows))
            if finished:
                self._loop.call_soon_threadsafe(settle, finished)


def started(threads: int, name: str) -> ThreadPoolExecutor:
    """A pool of ``threads`` threads, all started now (a pool otherwise starts one only
    when it counts none idle, and items may queue behind busy threads meanwhile)."""
    pool = ThreadPoolExecutor(threads, name)
    everyone = threading.Barrier(threads + 1)
    for _ in range(threads):
        pool.submit(everyone.wait)
    everyone.wait()
    return pool


def settle(results: list[Outcome]) -> None:
    """On the event loop: give each job's caller its rows, or the error that stopped it."""
    for job, result in results:
        if job.future.done():  # the caller went away
            continue
        if isinstance(result, BaseException):
            job.future.set_exception(result)
        else:
            job.future.set_result(result)
