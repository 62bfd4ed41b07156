"""SIGTERM and Ctrl-C for commands that run worker processes (predict, watch, build).

``kill`` and ``timeout`` send SIGTERM, which by default ends the parent at once and leaves
its spawned workers running. :func:`terminate_on_signals` turns SIGTERM into
:class:`Terminated` (a KeyboardInterrupt), so the same cleanup runs as for Ctrl-C: ``with``
blocks close, temporary files are removed and :func:`terminate_pool` stops the workers
without waiting for their tasks. Workers ignore SIGINT (:func:`worker_ignores_interrupts`):
Ctrl-C reaches the whole process group, and the parent decides; they exit by themselves
when the parent dies (``kill -9``).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Exit status of a command stopped by SIGTERM or SIGINT (128 + signal number).
EXIT_TERMINATED = 128 + signal.SIGTERM
EXIT_INTERRUPTED = 128 + signal.SIGINT


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM."""


#: The signal received (its name), kept as well as raised: a handler that runs inside a
#: finalizer (a ``__del__`` or weakref callback, where Python prints "Exception ignored" and
#: goes on) loses its exception, and :func:`result_between_signals` raises it again.
_received: list[str] = []


def _raise_terminated(signum, frame) -> None:
    _received.append(signal.Signals(signum).name)
    raise Terminated(f"received signal {_received[-1]}")


@contextmanager
def terminate_on_signals() -> Iterator[None]:
    """Inside this block SIGTERM raises Terminated (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _received.clear()


def worker_ignores_interrupts(poll: float = 1.0) -> None:
    """In a worker process: leave Ctrl-C to the parent, and exit when the parent is gone.

    A parent killed with SIGKILL cannot stop its workers; they would wait for tasks
    forever, so a daemon thread checks every ``poll`` seconds that the parent still lives.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    spawner = multiprocessing.parent_process()  # the parent may already be gone by now
    parent = spawner.pid if spawner is not None else os.getppid()

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(1)

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()


def terminate_pool(pool, timeout: float = 5.0) -> None:
    """Stop a ProcessPoolExecutor now: cancel queued tasks, SIGTERM its processes, then SIGKILL.

    ``shutdown`` alone waits for the tasks already running, which can take minutes.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    results = getattr(pool, "_result_queue", None)  # shutdown forgets it
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join(timeout)
    # A worker killed while writing its result leaves half a message in the result pipe;
    # the pool's manager thread would wait for the rest forever, and so would this process
    # at exit (it joins that thread). The workers' ends of the pipe died with them: closing
    # this process's end turns the wait into an end of file, handled as a broken pool.
    writer = getattr(results, "_writer", None)
    if writer is not None:
        writer.close()


def result_between_signals(future: Any, timeout: float | None = None, poll: float = 0.5) -> Any:
    """``future.result(timeout)`` (a concurrent.futures or Dask future), waited for ``poll``
    seconds at a time, raising :class:`Terminated` once a signal was received even where its
    own exception was lost in a finalizer: ``build`` went on waiting for its tasks after
    SIGTERM in about 1 run in 30 (handler installed, nothing pending or blocked), and in none
    of 80 with this wait. TimeoutError after ``timeout`` seconds (None: no limit)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if _received:
            raise Terminated(f"received signal {_received[-1]}")
        left = poll if deadline is None else min(poll, max(deadline - time.monotonic(), 0.0))
        try:
            return future.result(timeout=left)
        except TimeoutError:
            # Done now: the task's own TimeoutError, or it finished between the wait's end and
            # this check (Dask's client times its wait apart from the task: a build failed
            # "timed out after 0.5 s." so); its result or its own exception, without a wait.
            if future.done():
                return future.result()
            if deadline is not None and time.monotonic() >= deadline:
                raise
