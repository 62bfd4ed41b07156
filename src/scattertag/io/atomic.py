"""Crash-safe output: whole files by temporary name + fsync + rename, whole rows by append.

Every output of scattertag goes through one of two writers:

* :func:`atomic_file` (on :func:`scattertag.io.files.atomic_path`) for files written in one
  go (CSV tables, JSON): the data go
  to a temporary name in the same folder, are flushed to disk (fsync), and only then
  renamed over the target, so the target is either the old file or the complete new one.
  On any error the temporary file is removed.
* :class:`AppendingCSV` for files that grow row by row (``predict --watch``): each row is
  written with one ``write`` call and fsynced; a row that cannot be written whole (a full
  disk) is cut off again, and a half row left by a crash is cut off when the file is
  opened again, so the file always ends on a complete line.

:func:`check_output` is called before any work starts: the output must not be one of the
inputs, its folder must be writable and have room.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from scattertag.io.files import atomic_path

#: Free bytes an output folder must have before a run starts (on top of the expected output).
MIN_FREE_BYTES = 1 << 20


@contextmanager
def atomic_file(path: str | Path, mode: str = "w", **kwargs) -> Iterator:
    """Open ``path``'s temporary name for writing; on success fsync and rename it to ``path``.

    ``with atomic_file("t.csv", newline="") as f: f.write(...)``. On an exception the
    temporary file is removed and ``path`` is left as it was (:func:`atomic_path`).
    """
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def same_file(a: str | Path, b: str | Path) -> bool:
    """True if ``a`` and ``b`` name the same existing file (links and relative names resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def check_output(
    out: str | Path, inputs: Iterable[str | Path] = (), need_bytes: int = 0, flag: str = "--out"
) -> Path:
    """Check before any work that ``out`` can be written; ValueError saying why not.

    Refused: ``out`` is one of ``inputs`` (it would be overwritten), is a folder, its folder
    cannot be created or written, or has less than ``need_bytes`` + 1 MiB free.
    """
    out = Path(out)
    for source in inputs:
        file = str(source).partition("::")[0]
        if file and Path(file).exists() and same_file(out, file):
            raise ValueError(f"{flag} {out} is also an input file; it would be overwritten")
    if out.is_dir():
        raise ValueError(f"{flag} {out} is a folder; give a file name")
    folder = out.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{flag} {out}: cannot create its folder ({exc.strerror})") from None
    probe = folder / f".{out.name}.{os.getpid()}.probe"
    try:
        with open(probe, "wb") as f:
            f.write(b"\0" * 512)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise ValueError(f"{flag} {out}: cannot write in {folder} ({exc.strerror})") from None
    finally:
        probe.unlink(missing_ok=True)
    free = shutil.disk_usage(folder).free
    if free < need_bytes + MIN_FREE_BYTES:
        raise ValueError(
            f"{flag} {out}: only {free / 2**20:.1f} MiB free in {folder}, "
            f"need {(need_bytes + MIN_FREE_BYTES) / 2**20:.1f} MiB"
        )
    return out


class AppendingCSV:
    """A text file that grows by whole lines only, even across crashes and full disks.

    Opening it cuts off a trailing partial line (left by a crash mid-write) and reports it in
    ``repaired``. :meth:`append` writes its text with one ``write`` call, then fsyncs; if that
    fails (no space left), the file is cut back to where it was and the error re-raised.
    """

    def __init__(self, path: str | Path, header: str = "") -> None:
        self.path = Path(path)
        self.repaired = 0  # bytes of a partial last line cut off on opening
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            size = self._repair()
            if size == 0 and header:
                self._write(header, 0)
        except BaseException:
            os.close(self.fd)
            raise

    def _repair(self) -> int:
        """Truncate after the last newline; the resulting size."""
        size = os.fstat(self.fd).st_size
        if size == 0:
            return 0
        end, block = size, 1 << 16
        while end > 0:
            start = max(0, end - block)
            chunk = os.pread(self.fd, end - start, start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            end = start
        else:
            keep = 0
        if keep != size:
            os.ftruncate(self.fd, keep)
            os.fsync(self.fd)
            self.repaired = size - keep
        return keep

    def _write(self, text: str, offset: int) -> None:
        """Write ``text`` at ``offset`` whole, or restore the file to ``offset`` bytes and raise."""
        data = text.encode()
        try:
            written = os.pwrite(self.fd, data, offset)
            while written < len(data):  # a short write: the disk filled up part-way
                more = os.pwrite(self.fd, data[written:], offset + written)
                if more == 0:
                    raise OSError(28, "No space left on device")
                written += more
            os.fsync(self.fd)
        except BaseException:
            try:
                os.ftruncate(self.fd, offset)
                os.fsync(self.fd)
            except OSError:
                pass
            raise

    def append(self, text: str) -> None:
        """Append ``text`` (complete lines) at the end: all of it or none of it."""
        if text:
            self._write(text, os.fstat(self.fd).st_size)

    def close(self) -> None:
        """Close the file."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> AppendingCSV:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
