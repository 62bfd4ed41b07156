"""Cores, threads and worker processes, shared by dataset building, training and prediction.

Parallelism comes from processes, one thread each: numpy/scipy (BLAS, OpenMP), torch and
pyFAI all start a thread per core by default, and N such processes on N cores run N^2
threads, which on a shared machine costs 2-16x (benchmarks/bench_predict.py). So

* :func:`usable_cores` counts the cores this process may really use: its CPU affinity,
  capped by a cgroup CPU quota (containers, batch schedulers);
* :func:`limit_threads` caps every thread pool of this process (threadpoolctl for
  BLAS/OpenMP, ``torch.set_num_threads`` for torch);
* :func:`single_threaded_children` makes processes started inside it begin with one
  thread per pool (spawned workers read the variables before importing numpy);
* :func:`reuse_freed_memory` lets a worker's malloc keep the large arrays it frees for the
  next frame, instead of taking fresh pages from the kernel each time;
* :func:`local_cluster` starts a Dask cluster of single-threaded worker processes on
  this machine, without the profiling and monitoring that cost ~10 % of a core;
* :func:`worker_context` says how worker processes start: forked where the platform
  allows it (they begin with everything the parent has imported and set up, at no cost),
  else spawned (a fresh interpreter: ~2 s of CPU each for imports and set-up).
"""

from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Environment variables that size the BLAS / OpenMP thread pools of numpy, scipy and torch.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

#: glibc ``mallopt`` parameters (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3

#: cgroup v2 and v1 files holding the CPU quota of this process's group.
CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1 = (
    Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
)


def cgroup_cpu_limit(v2: Path = CGROUP_V2, v1: tuple[Path, Path] = CGROUP_V1) -> float | None:
    """CPUs the cgroup quota allows (quota / period, e.g. 1.5); None if unlimited or unknown."""
    try:
        if v2.is_file():
            max_text, period_text = v2.read_text().split()[:2]
            return None if max_text == "max" else int(max_text) / int(period_text)
        if v1[0].is_file() and v1[1].is_file():
            q, p = int(v1[0].read_text()), int(v1[1].read_text())
            return None if q <= 0 or p <= 0 else q / p
    except (OSError, ValueError):
        pass
    return None


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity, capped by the cgroup CPU quota (>= 1)."""
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    limit = cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, max(1, math.ceil(limit)))
    return max(1, cores)


def limit_threads(threads: int = 1) -> None:
    """Cap this process's BLAS/OpenMP pools and torch's intra-op threads at ``threads``, for good.

    For worker processes. Also sets the environment variables, so libraries loaded later
    and child processes start with the same cap.
    """
    threads = max(1, int(threads))
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    if "torch" in sys.modules:  # torch is imported by whoever needs it, not here
        sys.modules["torch"].set_num_threads(threads)


def reuse_freed_memory(largest: int = 2**29) -> bool:
    """Let malloc keep freed blocks of up to ``largest`` bytes for reuse (glibc); True if set.

    For worker processes that allocate arrays of the same large sizes frame after frame (a
    2000 x 2000 frame is 16 MB as uint32 or float32, and each step makes one or two). glibc
    serves blocks above its mmap threshold (dynamic, at most 32 MB) with fresh pages from
    the kernel and gives them back when freed, so each frame faults its pages in again:
    1.1 million minor page faults and ~25 ms of kernel CPU per 2000 px frame in some runs
    of 200 files, 50 thousand in others. With the threshold above the largest array and a
    trim threshold twice that, freed arrays stay in the heap and are reused: the heap holds
    about the peak of the live arrays, not one more frame's worth per frame.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mmap = libc.mallopt(M_MMAP_THRESHOLD, int(largest))
        trim = libc.mallopt(M_TRIM_THRESHOLD, 2 * int(largest))
    except (OSError, AttributeError, ctypes.ArgumentError):  # not glibc (musl), or too large
        return False
    return bool(mmap and trim)


@contextmanager
def limited_threads(threads: int = 1, torch_threads: int | None = None) -> Iterator[None]:
    """Inside: BLAS/OpenMP pools capped at ``threads``, torch at ``torch_threads`` (default
    ``threads``); the caller's settings come back on exit (for library calls)."""
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    saved = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(max(1, int(threads))):
        if torch is not None:
            torch.set_num_threads(max(1, int(torch_threads or threads)))
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(saved)


def worker_split(workers: int | None, cores: int | None = None) -> tuple[int, int]:
    """(worker processes, torch threads of the model process) for ``workers`` (None: automatic).

    Automatic: one single-threaded worker per usable core; the model process, which
    mostly waits on them, gets the cores the workers leave (at least one thread).
    """
    cores = usable_cores() if cores is None else cores
    workers = cores if workers is None else int(workers)
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    return workers, max(1, cores - workers)


@contextmanager
def single_threaded_children() -> Iterator[None]:
    """Processes started inside this block begin with one BLAS/OpenMP thread each.

    Parallelism comes from the processes; N workers each running several threads would
    oversubscribe the cores. Spawned workers read the variables before importing numpy.
    """
    saved = {var: os.environ.get(var) for var in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


#: Dask settings of :func:`local_cluster`. By default every worker samples its
#: running task's stack every 10 ms (the dashboard's profile), and every process checks its
#: event loop every 20 ms and its memory every 100 ms: idle, a 2-worker cluster used 11 %
#: of a core (1.13 CPU s in 10 s), 1.4 % with these (benchmarks/bench_throughput.py, dask).
QUIET = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
}


@contextmanager
def local_cluster(workers: int | None = None) -> Iterator:
    """A ``distributed.LocalCluster`` of ``workers`` single-threaded processes (default one
    per usable core) with the :data:`QUIET` settings, closed on exit."""
    import dask
    from distributed import LocalCluster

    n = usable_cores() if workers is None else max(1, int(workers))
    # workers started by the cluster's nannies take the settings in force here
    with (
        dask.config.set(QUIET),
        LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
    ):
        yield cluster


def worker_context() -> multiprocessing.context.BaseContext:
    """How worker processes start: "fork" on Linux, else "spawn".

    A forked worker shares the parent's imported modules and set-up (copy on write), so
    it starts in milliseconds; a spawned one imports numpy, scipy and fabio and sets up
    each geometry again (~2 s of CPU, 10 ms a frame over a 200-frame run on 2 cores).
    Forking a process whose torch holds a thread pool is safe for workers that never
    run torch (ours only read files and make views; PyTorch's own DataLoader forks too).
    macOS and Windows have no safe fork: workers are spawned there.
    """
    return multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
