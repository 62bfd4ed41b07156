"""Cores and worker processes, shared by dataset building, training and prediction."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

#: Environment variables that size the BLAS / OpenMP thread pools of numpy, scipy and torch.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cores() -> int:
    """CPU cores this process may run on."""
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )


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
