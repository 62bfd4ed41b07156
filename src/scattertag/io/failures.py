"""One place that turns any exception raised while reading or preparing a file into its message.

A batch job must go on past a bad file, so every exception of one file -- a ReadError, a
PermissionError, an HDF5 library error on corrupt metadata, a decoder's bare
AssertionError, a ValueError from the geometry -- becomes the ``error`` text of that file's
row. The text always starts with the file's name.
"""

from __future__ import annotations

import errno


def failure_message(source: str, exc: BaseException, frame: int | None = None) -> str:
    """``'SOURCE[ frame N]: problem'`` for an exception raised while handling ``source``."""
    where = source if frame is None else f"{source} frame {frame}"
    text = str(exc).strip()
    if text.startswith(str(source)):  # already names the file
        return text
    if isinstance(exc, PermissionError):
        return f"{where}: permission denied (the file cannot be read by this user)"
    if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
        return f"{where}: symbolic link loop (the link points back to itself)"
    if isinstance(exc, MemoryError):
        return f"{where}: not enough memory to read and prepare this frame"
    plain = ("ValueError", "ReadError", "NoBeamCentre")  # their text says what went wrong
    if isinstance(exc, ValueError) and text and type(exc).__name__ in plain:
        return f"{where}: {text}"
    name = type(exc).__name__
    return f"{where}: {name}: {text}" if text else f"{where}: {name} (corrupt or unsupported file?)"
