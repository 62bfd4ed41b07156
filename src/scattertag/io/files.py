"""Files written atomically (temporary name, fsync, rename) and JSON read with clear errors.

PONI files, manifests, model cards, evaluations and study tables all go through here, so a
crash never leaves half a file where a complete one stood.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_name(path: str | Path) -> Path:
    """The name a file is written under before it is renamed to ``path``: ``path`` + ``.tmp``."""
    path = Path(path)
    return path.with_name(path.name + ".tmp")


def publish(tmp: str | Path, path: str | Path, durable: bool = True) -> Path:
    """fsync the finished file ``tmp`` and rename it to ``path`` (atomic on one file system).

    ``durable=False``: rename without the fsyncs (the file is complete under its final name
    at once; :func:`fsync_file` later makes it survive a power cut).
    """
    if not durable:
        os.replace(tmp, path)
        return Path(path)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_folder(Path(path).parent)  # the rename itself survives a power cut
    return Path(path)


def fsync_file(path: str | Path, folder: bool = True) -> None:
    """Flush a file and (``folder``) its folder entry to disk."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
    if folder:
        fsync_folder(Path(path).parent)


def fsync_folder(folder: str | Path) -> None:
    """Flush a folder's entries (a rename) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def drop_cached(path: str | Path) -> None:
    """Free the page cache held by a file already flushed to disk (``posix_fadvise``
    DONTNEED; nothing where there is none, or if the file is gone). The next new file then
    reuses those pages instead of fresh ones, which a virtual machine may have to fault in
    from its host (``docs/throughput.md``)."""
    if not hasattr(os, "posix_fadvise"):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` under; published on success, removed on error.

    For writers that take a file name (torch.save, safetensors, h5py):
    ``with atomic_path(p) as tmp: torch.save(state, tmp)``. ``durable``: as :func:`publish`.
    """
    tmp = temporary_name(path)
    try:
        yield tmp
        publish(tmp, path, durable)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256(path: str | Path, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path``: temporary name, fsync, rename (never half a file)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes | memoryview, durable: bool = True) -> Path:
    """Write ``data`` to ``path``: temporary name, fsync, rename (never half a file);
    ``durable``: as :func:`publish`."""
    with atomic_path(path, durable) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | Path, obj: object) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return write_text(path, json.dumps(obj, indent=1) + "\n")


def read_json(path: str | Path) -> object:
    """The parsed content of ``path``; ValueError naming the file if it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
