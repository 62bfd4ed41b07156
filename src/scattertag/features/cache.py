"""On-disk cache of geometry set-ups: what a ViewMaker computes once per geometry.

Setting up the views of a new (geometry, static mask, view spec) costs ~0.3-0.5 s at
1000 x 1000 (the cake's pixel sort, the Fourier-Bessel spread operator and the Cholesky
factor of its fit); tagging a frame costs ~20 ms. An archive taken with thousands of beam
centres is tagged again and again, so the set-up arrays are kept in a folder:

* one file per set-up, named by a BLAKE2 digest of the view spec, the geometry, the static
  mask and :data:`FORMAT`: a short header (:data:`MAGIC`, the length of a JSON list of
  (name, dtype, shape, offset, Fortran order)) and the raw arrays at 64-byte boundaries,
  ~45 MB at the default view spec. A read maps the file into memory (``mmap``): the arrays
  are read-only views of the page cache, so taking up a set-up costs ~1 ms, not a copy
  of its 45 MB, and processes that read one set-up share its pages;
* safe under concurrent writers (processes, Dask workers, hosts on a shared file system):
  each writes a temporary file of its own, fsyncs it and renames it into place, so a
  reader sees a complete file or none; a file that cannot be read counts as absent;
* written off the caller's path when it asks (``store(..., wait=False)``, as a new
  geometry's set-up does): a thread of the process writes and fsyncs the file while the
  caller goes on with its frame (the fsync waits ~40-150 ms for the disk at 1000 x 1000),
  at most :data:`PENDING` files at a time (the caller waits beyond: memory stays bounded);
  a read of a key being written waits for it, and the process waits for its writes
  before it exits (one killed meanwhile leaves a temporary file, never a torn entry);
* bounded: after each write the least recently used files are deleted until the folder
  holds at most ``max_bytes`` (reads refresh a file's time).

Beside the set-ups it keeps the image's verdict on a given beam centre for each frame
checked (a few bytes a file; :mod:`scattertag.prediction.beam`), which a re-run would
otherwise compute again for every new geometry.

The folder is ``$SCATTERTAG_CACHE`` (``off`` disables it), else ``$XDG_CACHE_HOME`` or
``~/.cache``, then ``scattertag/setup``; ``$SCATTERTAG_CACHE_GB`` sets the bound (16 GB).
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from scattertag.io.masks import mask_digest

#: Version of the cached arrays' layout; part of every key, so old files are never misread
#: (3: the cake and the Fourier-Bessel working frame cover the frame only, not a padded square;
#: 4: the radial profiles (hankel) of both spline grids are stored too;
#: 5: factors stored without their masks' disk validity; 6: raw arrays mapped by mmap, not
#: .npz; 7: the unfamiliarity score's sampled cells stored too; 8: and the inverses of the
#: diagonal blocks of each Cholesky factor; 9: those blocks at least 512 rows, not 256;
#: 10: the working-frame and cake weights of the static mask's validity; 11: the cake's pixel
#: order as intp, not int32; 12: each Cholesky factor as packed panels, its half and the
#: inverses of its diagonal blocks, ~21 MB instead of ~42 MB at 1984 unknowns; 13: the normal
#: matrix assembled from Bernstein moments of the pixels: the same to ~3e-7 of its largest entry;
#: 14: the Cholesky factor in float32 at the shipped regularisation, half the bytes).
FORMAT = 14

#: First bytes of a set-up file; its name ends in :data:`SUFFIX`.
MAGIC, SUFFIX = b"STSETUP\x00", ".setup"

#: Default bound on the folder's size (about 350 set-ups at 1000 x 1000).
DEFAULT_GB = 16.0

#: Most files a process writes in the background at a time (``store(..., wait=False)``).
PENDING = 2


class SetupCache:
    """A folder of set-up arrays keyed by digest (see the module docstring)."""

    def __init__(self, folder: str | Path, max_bytes: float = DEFAULT_GB * 2**30) -> None:
        self.folder = Path(folder)
        self.max_bytes = float(max_bytes)
        self.hits = self.misses = 0

    @staticmethod
    def key(*parts: object, mask: np.ndarray | None = None) -> str:
        """Hex digest of JSON-serialisable ``parts``, the boolean ``mask`` and :data:`FORMAT`."""
        h = hashlib.blake2b(digest_size=20)
        h.update(json.dumps([FORMAT, *parts], sort_keys=True, default=str).encode())
        if mask is not None:
            h.update(mask_digest(mask).encode())
        return h.hexdigest()

    def path(self, key: str) -> Path:
        """The file of ``key``."""
        return self.folder / f"{key}{SUFFIX}"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key`` (read-only, mapped), or None (absent or unreadable)."""
        path = self.path(key)
        _BACKGROUND.wait_for(path)  # a write of this process not yet done
        try:
            arrays = read_arrays(path)
            os.utime(path)  # least recently *used* goes first
        except (OSError, ValueError, KeyError, TypeError):
            self.misses += 1
            return None
        self.hits += 1
        return arrays

    def store(self, key: str, arrays: dict[str, np.ndarray], wait: bool = True) -> None:
        """Write ``arrays`` under ``key`` atomically, then keep the folder within its bound;
        with ``wait=False`` in this process's background writer (the arrays must not change
        until it is written; :meth:`flush` waits for it).

        A failure to write (disk full, read-only folder) leaves the cache as it was: the
        set-up is simply not kept.
        """
        if wait:
            self._write(key, arrays)
        else:
            _BACKGROUND.submit(self.path(key), lambda: self._write(key, arrays))

    def flush(self) -> None:
        """Wait until this process's background writes are on disk (or failed)."""
        _BACKGROUND.flush()

    def _write(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        """:meth:`store`'s work: temporary file, fsync, rename, prune."""
        path = self.path(key)
        tmp = path.with_name(f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                write_arrays(f, arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            return
        self.prune()

    def prune(self) -> None:
        """Delete the least recently used files until the folder holds at most ``max_bytes``,
        and temporary files over an hour old (left by a writer that was killed)."""
        entries = []
        stale = time.time() - 3600.0
        for entry in os.scandir(self.folder):
            setup, tmp = entry.name.endswith(SUFFIX), entry.name.endswith(".tmp")
            if not (setup or tmp):
                continue
            try:
                st = entry.stat()
            except OSError:  # deleted by another process meanwhile
                continue
            if setup:
                entries.append((st.st_mtime, st.st_size, entry.path))
            elif st.st_mtime < stale:
                Path(entry.path).unlink(missing_ok=True)
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            Path(path).unlink(missing_ok=True)
            total -= size

    @property
    def nbytes(self) -> int:
        """Bytes held in the folder now."""
        return (
            sum(p.stat().st_size for p in self.folder.glob(f"*{SUFFIX}"))
            if self.folder.is_dir()
            else 0
        )


class _Writer:
    """The background writer of a process: one thread, at most :data:`PENDING` writes
    queued or running (:meth:`submit` waits beyond), pending writes by path. A forked child
    starts afresh (threads do not survive a fork; :func:`os.register_at_fork`)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """No thread, no pending write (a new process's state)."""
        self.lock = threading.Lock()
        self.pool: ThreadPoolExecutor | None = None  # started on first use
        self.slots = threading.Semaphore(PENDING)
        self.pending: dict[Path, Future] = {}

    def submit(self, path: Path, write: Callable[[], None]) -> None:
        """Run ``write()`` (which writes ``path``) in the thread, once a slot is free."""
        self.slots.acquire()  # at most PENDING entries' arrays held for writing
        with self.lock:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(1, "setup-cache")
            self.pending = {p: f for p, f in self.pending.items() if not f.done()}
            future, slots = self.pool.submit(write), self.slots

            def release(_: Future) -> None:
                slots.release()

            future.add_done_callback(release)
            self.pending[path] = future

    def wait_for(self, path: Path) -> None:
        """Wait for this process's pending write of ``path``, if any."""
        with self.lock:
            future = self.pending.get(path)
        if future is not None:
            future.exception()  # waits; a failed write just leaves no entry

    def flush(self) -> None:
        """Wait for every pending write of this process."""
        with self.lock:
            futures = list(self.pending.values())
        for future in futures:
            future.exception()


_BACKGROUND = _Writer()
os.register_at_fork(after_in_child=_BACKGROUND.reset)


def write_arrays(f, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to the binary file ``f``: :data:`MAGIC`, the header length (8 bytes,
    little-endian), the header (a JSON list of [name, dtype, shape, offset, Fortran order]),
    then each array's bytes, at ``offset`` from the first multiple of 64 after the header;
    every offset is a multiple of 64."""
    entries, parts, offset = [], [], 0
    for name, a in arrays.items():
        a = np.asarray(a)
        fortran = a.ndim > 1 and a.flags.f_contiguous and not a.flags.c_contiguous
        data = a.T if fortran else np.ascontiguousarray(a)  # C-contiguous either way
        entries.append([name, a.dtype.str, list(a.shape), offset, bool(fortran)])
        parts.append(data)
        offset += _aligned(data.nbytes)
    header = json.dumps(entries).encode()
    head = len(MAGIC) + 8 + len(header)
    f.write(MAGIC + len(header).to_bytes(8, "little") + header + bytes(_aligned(head) - head))
    for data in parts:
        f.write(data.reshape(-1).data.cast("B"))
        f.write(bytes(_aligned(data.nbytes) - data.nbytes))


def _aligned(n: int) -> int:
    """The first multiple of 64 at or after ``n``."""
    return -(-n // 64) * 64


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a file written by :func:`write_arrays`, as read-only views of the file
    mapped into memory. ValueError if it is not such a file or is cut short."""
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if mapped[: len(MAGIC)] != MAGIC:
        raise ValueError(f"{path}: not a set-up file")
    head = len(MAGIC) + 8 + int.from_bytes(mapped[len(MAGIC) : len(MAGIC) + 8], "little")
    out = {}
    for name, dtype, shape, offset, fortran in json.loads(mapped[len(MAGIC) + 8 : head]):
        dt, count, offset = np.dtype(dtype), math.prod(shape), _aligned(head) + int(offset)
        if (
            dt.kind not in "biuf"
            or min(shape, default=0) < 0
            or offset + count * dt.itemsize > len(mapped)
        ):
            raise ValueError(f"{path}: array {name!r} of type {dtype} out of the file")
        a = np.frombuffer(mapped, dt, count, offset)
        out[name] = a.reshape(shape[::-1]).T if fortran else a.reshape(shape)
    return out


def default_cache() -> SetupCache | None:
    """The cache named by the environment (module docstring), or None when it is ``off``."""
    where = os.environ.get("SCATTERTAG_CACHE", "")
    if where.lower() in ("off", "0", "none", "false"):
        return None
    if not where:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        where = str(Path(base) / "scattertag" / "setup")
    gb = float(os.environ.get("SCATTERTAG_CACHE_GB", DEFAULT_GB))
    return SetupCache(where, gb * 2**30)
