"""Levels of b x b blocks: where a level pixel lies on the frame.

A level pixel (i, j) covers frame pixels [b i, b i + b) x [b j, b j + b); its centre is
frame pixel (b j + (b - 1) / 2, b i + (b - 1) / 2) in (x, y), (0, 0) the centre of the
frame's first pixel.
"""

from __future__ import annotations


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
