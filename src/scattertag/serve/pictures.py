"""PNG pictures of stored frames: thumbnails, the false-colour frame view, the cake.

Frames are read again from their files (watched folders, uploads) when a picture is asked
for, with the same valid-pixel mask as tagging. The frame view is
:func:`scattertag.plotting.draw_frame` (masked pixels grey, beam centre marked), the cake is
the model's image view (mean channel) drawn by :func:`scattertag.plotting.draw_cake`;
thumbnails are the same log colour scale without matplotlib, so a gallery page is quick.
"""

from __future__ import annotations

import io
import threading
from dataclasses import replace

import matplotlib
import numpy as np
from PIL import Image

from scattertag import plotting
from scattertag.cache import BoundedCache
from scattertag.geometry import Geometry, GeometryOptions
from scattertag.io.masks import read_mask, valid_pixels
from scattertag.io.readers import read_frames
from scattertag.prediction.prepare import Preparer
from scattertag.serve.store import Record


def geometry_of(record: Record, shape: tuple[int, int]) -> Geometry:
    """The geometry a record was tagged with, for a frame of ``shape``."""
    s = record.setup
    options = GeometryOptions(
        record.beam_center,
        pixel_size=s["pixel_size"],
        distance=s["distance"],
        energy=s["energy"],
    )
    return options.resolve(shape)[0]


def load(record: Record) -> tuple[np.ndarray, np.ndarray]:
    """(counts, valid) of a stored frame, read from its file; ReadError if it is gone."""
    frame = next(read_frames(record.location, record.frame))
    counts = np.asarray(frame.counts)
    static = None if record.mask is None else read_mask(record.mask)
    return counts, valid_pixels(counts, static, frame.valid)


def png_bytes(fig) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def thumbnail(counts: np.ndarray, valid: np.ndarray, size: int = 160) -> bytes:
    """PNG of the log-scaled frame, subsampled to at most ``size`` pixels a side, masked grey."""
    step = max(1, int(np.ceil(max(counts.shape) / size)))
    img = plotting.log_display(counts[::step, ::step], valid[::step, ::step])
    lo, hi = (np.nanmin(img), np.nanmax(img)) if np.isfinite(img).any() else (0.0, 1.0)
    cmap = matplotlib.colormaps[plotting.CMAP].with_extremes(bad="0.6")
    rgba = cmap((img - lo) / max(hi - lo, 1e-12))  # min..max as imshow; NaN (masked) grey
    buffer = io.BytesIO()
    Image.fromarray((rgba[..., :3] * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def frame_view(counts: np.ndarray, valid: np.ndarray, beam_center: tuple[float, float]) -> bytes:
    """PNG of the frame as ``scattertag show`` draws it: log colour, mask grey, beam centre."""
    fig = plotting.new_figure(figsize=(5.5, 5.5))
    plotting.draw_frame(fig.add_subplot(), counts, valid, beam_center)
    return png_bytes(fig)


class Pictures:
    """Draws and caches the PNGs of stored frames (at most ``cache_size`` kept in memory)."""

    def __init__(self, view_spec, cache_size: int = 512) -> None:
        spec = (
            view_spec if view_spec.image_space == "cake" else replace(view_spec, image_space="cake")
        )
        self.spec = spec
        self._preparer = Preparer(spec)
        self._cache: BoundedCache[bytes] = BoundedCache(cache_size)
        self._lock = threading.Lock()  # matplotlib and the ViewMaker cache are not thread-safe

    def get(self, record: Record, kind: str, size: int = 160) -> bytes:
        """PNG ``kind`` ('thumb', 'image' or 'cake') of a stored frame, cached by id and size."""
        key = (record.id, record.tagged_at, kind, size)
        with self._lock:
            return self._cache.get(key, lambda: self._draw(record, kind, size))

    def _draw(self, record: Record, kind: str, size: int) -> bytes:
        """PNG ``kind`` of a stored frame, drawn now."""
        counts, valid = load(record)
        if kind == "thumb":
            return thumbnail(counts, valid, size)
        if kind == "image":
            return frame_view(counts, valid, geometry_of(record, counts.shape).beam_center)
        return self._cake(record, counts, valid)

    def _cake(self, record: Record, counts: np.ndarray, valid: np.ndarray) -> bytes:
        """PNG of the frame's cake: mean log counts on azimuth x log radius about the beam."""
        geometry = geometry_of(record, counts.shape)
        maker = self._preparer.maker(geometry, None)
        cake = maker.image(counts, valid)[0]
        side = max(counts.shape)
        fig = plotting.new_figure(figsize=(5.5, 3.2))
        plotting.draw_cake(
            fig.add_subplot(), cake, self.spec.cake_r_min * side, self.spec.cake_r_max * side
        )
        return png_bytes(fig)
