"""Request bodies turned into files the readers open: size limits, arrays, content addressing.

Uploads are kept under ``uploads/`` named by the BLAKE3 hash of their bytes, so the same
frame sent twice is one file (and, with the same geometry, is not tagged twice). A raw array is
either a ``.npy`` body or bare bytes with ``shape`` and ``dtype``; its shape is checked
against the readers' limits before anything is stored.
"""

from __future__ import annotations

import io
import re
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from blake3 import blake3
from python_multipart.multipart import parse_options_header

from scattertag.io.files import drop_cached, fsync_file, fsync_folder, write_bytes
from scattertag.io.readers import SUFFIXES, ReadError, check_shape

NPY_MAGIC = b"\x93NUMPY"
#: dtypes accepted for bare arrays: detector counts and intensities.
ARRAY_DTYPES = (
    "uint8",
    "uint16",
    "uint32",
    "int8",
    "int16",
    "int32",
    "int64",
    "float32",
    "float64",
)


class UploadError(Exception):
    """A request body that cannot be used; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_length(content_length: str | None, limit: int) -> int:
    """The declared body size, if present and within ``limit`` bytes (411 / 413 / 400 otherwise)."""
    if content_length is None:
        raise UploadError(411, "a Content-Length header is required for uploads")
    try:
        size = int(content_length)
    except ValueError:
        raise UploadError(
            400, f"Content-Length must be an integer, got {content_length!r}"
        ) from None
    if size > limit:
        raise UploadError(413, f"upload of {size:,} bytes exceeds the limit of {limit:,} bytes")
    return size


@dataclass
class Form:
    """A multipart/form-data body: ``files`` name -> (file name, bytes), ``fields`` name -> text.

    A file's bytes are a view of the request body (no copy of a 4 MB frame).
    """

    files: dict[str, tuple[str, memoryview]] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)


#: A header name: an RFC 9110 token.
HEADER_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def parse_form(body: bytes, content_type: str, max_parts: int = 4) -> Form:
    """The parts of a multipart/form-data ``body`` (RFC 7578; 400 if it is broken).

    The whole body is in memory already (its size checked by :func:`check_length`), so its
    delimiters (CR LF ``--boundary``) are found with ``bytes.find`` and each file part is a
    view of the body: a 4 MB frame is not copied (python-multipart's parser, a callback per
    run of bytes between CRs, took ~3 ms of the event loop and a copy per frame; Starlette's
    ``request.form()`` spooled it to a temporary file). A preamble before the first delimiter
    and anything after the closing one are ignored, as the RFC says.
    """
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadError(400, "broken multipart body: no boundary in the Content-Type")
    delimiter = b"\r\n--" + boundary
    view, form, parts = memoryview(body), Form(), 0
    if body.startswith(delimiter[2:]):  # the first delimiter opens the body: no CR LF
        pos = len(delimiter) - 2
    else:  # after a preamble
        pos = body.find(delimiter)
        if pos < 0:
            raise UploadError(400, "broken multipart body: no part (no boundary in the body)")
        pos += len(delimiter)
    while body[pos : pos + 2] != b"--":  # not the closing delimiter
        line_end = body.find(b"\r\n", pos)
        if line_end < 0 or body[pos:line_end].strip(b" \t"):
            raise UploadError(400, "broken multipart body: no line break after a boundary")
        head_end = body.find(b"\r\n\r\n", line_end)
        if head_end < 0:
            raise UploadError(400, "broken multipart body: a part's headers do not end")
        start = head_end + 4
        end = body.find(delimiter, start - 2)  # a part with no bytes ends right away
        if end < 0:
            raise UploadError(400, "broken multipart body: no closing boundary")
        parts += 1
        if parts > max_parts:
            raise UploadError(400, f"broken multipart body: more than {max_parts} parts")
        headers = _part_headers(body[line_end + 2 : head_end])
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        data = view[start:end] if end >= start else view[start:start]
        if b"filename" in disposition:
            form.files[name] = (disposition[b"filename"].decode("utf-8", "replace"), data)
        else:
            form.fields[name] = bytes(data).decode("utf-8", "replace")
        pos = end + len(delimiter)
    if parts == 0:
        raise UploadError(400, "broken multipart body: no part")
    return form


def _part_headers(block: bytes) -> dict[bytes, bytes]:
    """A part's header lines as lower-case name -> value (400 if one is broken)."""
    headers = {}
    for line in block.split(b"\r\n") if block else []:
        name, colon, value = line.partition(b":")
        if not colon or not HEADER_NAME.fullmatch(name):
            raise UploadError(
                400, f"broken multipart body: invalid character in header {line!r:.80}"
            )
        headers[name.lower()] = value.strip(b" \t")
    return headers


def suffix_of(filename: str) -> str:
    """The reader suffix of an uploaded file's name (415 if no reader takes it)."""
    name = filename.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise UploadError(415, f"{filename!r}: unsupported file type; supported: {', '.join(SUFFIXES)}")


def parse_shape(text: str) -> tuple[int, ...]:
    """'rows,cols' or 'frames,rows,cols' as integers (400 otherwise)."""
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(","))
    except ValueError:
        raise UploadError(400, f"shape must be integers like '512,512', got {text!r}") from None
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise UploadError(400, f"shape must be 2 or 3 positive integers, got {text!r}")
    return shape


def array_bytes(body: bytes, shape: str | None, dtype: str | None) -> bytes:
    """A .npy file of an array body: ``.npy`` bytes as they are, or bare bytes + shape + dtype.

    A bare array's shape is checked against the readers' limits before it is converted.
    """
    if body.startswith(NPY_MAGIC):
        return body  # its header is checked by the readers once stored (count_frames)
    if shape is None or dtype is None:
        raise UploadError(
            400, "an array body is a .npy file, or bare bytes with the shape and dtype parameters"
        )
    dims = parse_shape(shape)
    if dtype not in ARRAY_DTYPES:
        raise UploadError(400, f"dtype must be one of {', '.join(ARRAY_DTYPES)}, got {dtype!r}")
    kind = np.dtype(dtype)
    _check_array(dims)
    need = int(np.prod(dims)) * kind.itemsize
    if len(body) != need:
        raise UploadError(
            400, f"body has {len(body):,} bytes; shape {dims} of {dtype} needs {need:,}"
        )
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(body, kind).reshape(dims), allow_pickle=False)
    return buffer.getvalue()


def _check_array(shape: tuple[int, ...]) -> None:
    """422 unless the array is 2-D/3-D within the frame limits."""
    try:
        check_shape("array", tuple(shape))
    except ReadError as exc:
        raise UploadError(422, str(exc)) from None


class UploadFolder:
    """Content-addressed storage of uploaded files: ``folder/<blake3[:24]><suffix>``.

    BLAKE3 is a cryptographic hash as SHA-256 is (96 bits of it name a file), at ~0.9
    instead of ~3 CPU ms a 4 MB frame (``docs/throughput.md``). Uploads stored by an older
    version under their SHA-256 names keep their results; the same bytes sent again are
    stored and tagged once more under the new name.

    An upload is written under a temporary name and renamed (:meth:`save`), so a file under
    its final name is always complete; it is flushed to disk (:meth:`flush`, in a thread)
    while it is being tagged, and its result is stored only after that. The flushing thread
    takes every upload waiting for it at once: each file's data, then the folder once for
    all of them (a folder fsync, a journal commit, per group rather than per upload). A
    power cut before the flush can leave a file that no result names; the next upload of
    the same bytes compares the content, not only the size, and writes it again. Once an
    upload is flushed and read, :meth:`release` has the flushing thread free its page cache
    (the next upload's file reuses those pages).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder).absolute()  # items name it: Dask workers open them there
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._waiting: list[tuple[Path, Future]] = []  # saved, not flushed yet
        self._released: list[Path] = []  # flushed and read: their page cache can go
        self._wake = threading.Condition()
        self._flusher: threading.Thread | None = None
        self._closed = False

    def save(self, data: bytes | memoryview, suffix: str) -> Path:
        """Store ``data`` (once per content) and return its path; call :meth:`sync` before
        anything that names it is stored."""
        path = self.folder / (blake3(data).hexdigest()[:24] + suffix)
        with self._lock:
            if not _holds(path, data):
                write_bytes(path, data, durable=False)  # flushed by sync, while it is tagged
        return path

    def sync(self, path: Path) -> None:
        """Flush a saved upload and its folder entry to disk (fsync), now."""
        fsync_file(path)

    def flush(self, path: Path) -> Future:
        """Flush a saved upload and its folder entry to disk in the flushing thread; done
        (or failed with the OSError) once both are."""
        future: Future = Future()
        with self._wake:
            if self._closed:
                raise RuntimeError("the upload folder is closed")
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush, name="flush", daemon=True)
                self._flusher.start()
            self._waiting.append((path, future))
            self._wake.notify()
        return future

    def release(self, path: Path) -> None:
        """Say that a flushed upload has been read: the flushing thread frees its page cache
        when it next wakes (no wake-up of its own)."""
        with self._wake:
            self._released.append(path)

    def close(self) -> None:
        """Flush what is waiting, then stop the flushing thread."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._flusher is not None:
            self._flusher.join()

    def _flush(self) -> None:
        """The flushing thread: every waiting upload's data, then the folder once."""
        while True:
            with self._wake:
                while not self._waiting and not self._closed:
                    self._wake.wait()
                group, self._waiting = self._waiting, []
                released, self._released = self._released, []
            for path in released:
                drop_cached(path)
            if not group:
                return  # closed, nothing left
            failed: dict[Path, OSError] = {}
            for path, _ in group:
                try:
                    fsync_file(path, folder=False)
                except OSError as exc:
                    failed[path] = exc
            fsync_folder(self.folder)
            for path, future in group:
                if path in failed:
                    future.set_exception(failed[path])
                else:
                    future.set_result(None)


def _holds(path: Path, data: bytes | memoryview) -> bool:
    """Whether the file at ``path`` holds exactly ``data``."""
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False
