"""Where points lie on the frame: on it or off it, and on levels of b x b blocks; sums over
those blocks (:func:`block_sums`, which every level and edge window is built from).

A level pixel (i, j) covers frame pixels [b i, b i + b) x [b j, b j + b); its centre is
frame pixel (b j + (b - 1) / 2, b i + (b - 1) / 2) in (x, y), (0, 0) the centre of the
frame's first pixel.
"""

from __future__ import annotations

import numpy as np


def on_frame(x: float, y: float, shape: tuple[int, int]) -> bool:
    """True if (x, y) lies on a frame of ``shape`` (rows, cols): -0.5 <= x < cols - 0.5 and
    -0.5 <= y < rows - 0.5 (pixel centres at integers)."""
    return -0.5 <= x < shape[1] - 0.5 and -0.5 <= y < shape[0] - 0.5


def hypot(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """(N,) sqrt(dx^2 + dy^2) of dx, dy (N,), a new array (np.hypot's care for overflow costs
    ~40 % more; this is within an ulp of it)."""
    d = dx * dx
    d += dy * dy
    return np.sqrt(d, out=d)


class BlockGrid:
    """What knows its block size ``b`` (frame pixels a side) maps points to and from the frame."""

    b: int

    def to_frame(self, x: float, y: float) -> tuple[float, float]:
        """Level (x, y) -> frame (x, y) pixels."""
        off = (self.b - 1) / 2
        return x * self.b + off, y * self.b + off

    def from_frame(self, x: float, y: float) -> tuple[float, float]:
        """Frame (x, y) -> level (x, y) pixels."""
        off = (self.b - 1) / 2
        return (x - off) / self.b, (y - off) / self.b


def block_sums(a: np.ndarray, b: int) -> np.ndarray:
    """(R // b, C // b) float64 sums over b x b blocks (trailing rows/cols dropped)."""
    return exact_block_sums(a, b).astype(np.float64, copy=False)


def exact_block_sums(a: np.ndarray, b: int) -> np.ndarray:
    """(R // b, C // b) sums over b x b blocks, the values of :func:`block_sums`: in the
    smallest unsigned integer type that holds them where ``a`` holds whole numbers >= 0
    (bools, integers; exact in any order, so a pyramid sums its levels from each other
    without float passes), else float64 added a strided slice at a time."""
    rows, cols = a.shape[0] // b, a.shape[1] // b
    dtype = _whole_dtype(a, b)
    if b == 1:
        return a.astype(dtype or np.float64)
    if dtype is not None:
        whole = a.view(np.uint8) if a.dtype == bool else a
        return _whole_block_sums(whole[: rows * b, : cols * b], b, dtype)
    out = np.zeros((rows, cols))
    for i in range(b):
        for j in range(b):
            out += a[i : rows * b : b, j : cols * b : b]
    return out


def _whole_dtype(a: np.ndarray, b: int) -> type | None:
    """The unsigned integer type (8, 16 or 32 bits) holding every b x b block sum of ``a``
    when it holds whole numbers >= 0 (bools, integers), else None (negative values, sums
    of 2^32 or more, floats)."""
    if a.dtype == bool:
        top = 1
    elif a.dtype.kind in "iu" and a.size:
        if a.dtype.kind == "i" and a.min() < 0:
            return None
        top = int(a.max())
    else:
        return None
    most = top * b * b
    for dtype in (np.uint8, np.uint16, np.uint32):
        if most <= np.iinfo(dtype).max:
            return dtype
    return None


def _whole_block_sums(a: np.ndarray, b: int, dtype: type) -> np.ndarray:
    """Sums over b >= 2 x b blocks of whole numbers ``a`` (R b, C b) in ``dtype``, which the
    caller knows holds them: exact in any order, so the b rows of each block are added
    first (whole contiguous rows), then the b columns, each pass writing its own output."""
    acc = np.add(a[0::b], a[1::b], dtype=dtype, casting="unsafe")  # fits: exact
    for i in range(2, b):
        np.add(acc, a[i::b], out=acc, casting="unsafe")  # non-negative, fits: exact
    out = np.add(acc[:, 0::b], acc[:, 1::b])
    for j in range(2, b):
        out += acc[:, j::b]
    return out
