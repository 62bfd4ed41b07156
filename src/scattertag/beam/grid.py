"""Where points lie on the frame: on it or off it, and on levels of b x b blocks.

A level pixel (i, j) covers frame pixels [b i, b i + b) x [b j, b j + b); its centre is
frame pixel (b j + (b - 1) / 2, b i + (b - 1) / 2) in (x, y), (0, 0) the centre of the
frame's first pixel.
"""

from __future__ import annotations


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
