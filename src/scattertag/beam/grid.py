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
    rows, cols = a.shape[0] // b, a.shape[1] // b
    if a.dtype == bool and b * b < 256:  # counts of True: exact in uint8
        return _whole_block_sums(a[: rows * b, : cols * b].view(np.uint8), b).astype(np.float64)
    if a.dtype.kind in "iu" and a.size and a.min() >= 0 and int(a.max()) * b * b < 2**32:
        # whole counts whose block sums fit in uint32: exact, and half float64's memory
        return _whole_block_sums(a[: rows * b, : cols * b], b, np.uint32).astype(np.float64)
    out = np.zeros((rows, cols))
    for i in range(b):
        for j in range(b):
            out += a[i : rows * b : b, j : cols * b : b]
    return out


def _whole_block_sums(a: np.ndarray, b: int, dtype: type | None = None) -> np.ndarray:
    """Sums over b x b blocks of whole numbers ``a`` (R b, C b) in ``dtype`` (a's own when
    None), which the caller knows they fit: exact in any order, so the b rows of each block
    are added first (whole contiguous rows), then the b columns."""
    acc = a[0::b].astype(dtype or a.dtype)
    for i in range(1, b):
        np.add(acc, a[i::b], out=acc, casting="unsafe")  # non-negative, fits: exact
    out = acc[:, 0::b].copy()
    for j in range(1, b):
        out += acc[:, j::b]
    return out
