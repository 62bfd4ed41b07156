"""Turn one work item into the network's two views, frame by frame.

This is the part of tagging that runs in worker processes: read the file, build the
valid-pixel mask (mask file, the file's own pixel mask, and pixels that are negative --
Pilatus module gaps are -1 and -2 -- or not finite), and make the image and Fourier-Bessel
views with exactly the preprocessing used in training (``scattertag.features.views``).
Setting up a ViewMaker (the FB operator for one geometry and mask) is the expensive step,
so one is kept per distinct (geometry, static mask) and reused for every frame that shares
it; ViewMakers set up in one process can be handed to another (:meth:`Preparer.adopt`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from scattertag.io.failures import failure_message
from scattertag.io.readers import Frame, read_frames, read_mask
from scattertag.parallel import limit_threads
from scattertag.prediction.sources import Item
from scattertag.signals import worker_ignores_interrupts


@dataclass
class Views:
    """The network input for one frame, or why there is none.

    image : float32 ViewSpec.image_shape or None; coeff : float32 (C, N+1, K) or None.
    """

    source: str
    frame: int | None
    image: np.ndarray | None = None
    coeff: np.ndarray | None = None
    error: str = ""


def valid_pixels(counts: np.ndarray, *masks: np.ndarray | None) -> np.ndarray:
    """(rows, cols) bool: finite, non-negative pixels that every given mask keeps."""
    valid = np.isfinite(counts) if counts.dtype.kind == "f" else np.ones(counts.shape, bool)
    if counts.dtype.kind in "if":  # unsigned counts cannot be negative
        valid &= counts >= 0
    for mask in masks:
        if mask is not None:
            valid &= mask
    return valid


class Preparer:
    """Callable item -> list[Views], caching ViewMakers and mask files between calls."""

    def __init__(self, view_spec, cache_size: int = 8) -> None:
        from scattertag.features.cache import default_cache

        self.view_spec = view_spec
        self.cache_size = cache_size
        self.setup_cache = default_cache()  # set-ups on disk, shared by processes and runs
        self._makers: OrderedDict = OrderedDict()
        self._masks: OrderedDict = OrderedDict()

    def __call__(self, item: Item) -> list[Views]:
        """The views of every frame of ``item`` (one entry with the error if it fails)."""
        if item.error:
            return [Views(item.source, item.frame, error=item.error)]
        out = []
        try:
            for frame in read_frames(item.location, item.frame):
                out.append(self._views(item, frame))
        except Exception as exc:  # any problem with this file becomes its row
            out.append(Views(item.source, item.frame, error=failure_message(item.source, exc)))
        if not out:
            out.append(
                Views(item.source, item.frame, error=f"{item.source}: the file holds no frames")
            )
        return out

    def _views(self, item: Item, frame: Frame) -> Views:
        """Views of one frame; a per-frame problem becomes that row's error."""
        try:
            counts = np.asarray(frame.counts)
            static = self._static_mask(item.mask, counts.shape, frame.valid)
            valid = valid_pixels(counts, static)
            if not valid.any():
                raise ValueError(
                    f"{item.source}: frame {frame.index} has no valid pixels (all masked, negative or not finite)"
                )
            maker = self.maker(item.setup.geometry(counts.shape), static)
            image, coeff = maker(counts, valid)
        except Exception as exc:  # any problem with this frame becomes its row
            return Views(
                item.source, frame.index, error=failure_message(item.source, exc, frame.index)
            )
        return Views(
            item.source, frame.index, np.asarray(image, np.float32), np.asarray(coeff, np.float32)
        )

    @property
    def makers(self) -> dict:
        """The ViewMakers set up so far, by (geometry, mask digest)."""
        return dict(self._makers)

    def adopt(self, makers: dict) -> None:
        """Take ViewMakers set up elsewhere (by the parent process), so as not to set them up again."""
        for key, maker in makers.items():
            _cached(self._makers, key, lambda maker=maker: maker, self.cache_size)

    def _static_mask(
        self, mask_path: str | None, shape: tuple[int, int], file_valid: np.ndarray | None
    ):
        """Valid pixels from the mask file and the file's own mask (None if neither)."""
        if mask_path is None:
            return file_valid
        valid = _cached(self._masks, mask_path, lambda: read_mask(mask_path), self.cache_size)
        if valid.shape != shape:
            raise ValueError(
                f"{mask_path}: mask is {valid.shape[0]} x {valid.shape[1]}, frame is {shape[0]} x {shape[1]}"
            )
        return valid if file_valid is None else valid & file_valid

    def maker(self, geometry, static: np.ndarray | None):
        """The ViewMaker for this geometry and static mask, built once."""
        from scattertag.features.views import ViewMaker

        # a digest, not hash(): keys must agree between processes (ViewMakers are handed on)
        key = (
            geometry,
            None if static is None else hashlib.blake2b(np.packbits(static).tobytes()).hexdigest(),
        )
        return _cached(
            self._makers,
            key,
            lambda: ViewMaker(self.view_spec, geometry, static, self.setup_cache),
            self.cache_size,
        )


def _cached(cache: OrderedDict, key, build, size: int):
    """Least-recently-used lookup: ``cache[key]``, building it (and evicting the oldest) if absent."""
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = cache[key] = build()
    if len(cache) > size:
        cache.popitem(last=False)
    return value


_WORKER_PREPARER: Preparer | None = None


def start_worker(view_spec) -> None:
    """Process-pool initializer: one Preparer (and ViewMaker cache) per worker process."""
    global _WORKER_PREPARER
    worker_ignores_interrupts()
    limit_threads(1)  # parallelism comes from the processes
    _WORKER_PREPARER = Preparer(view_spec)


def prepare_in_worker(item: Item, makers: dict | None = None) -> list[Views]:
    """Run this worker's Preparer on one item, first adopting ``makers`` if given."""
    if makers:
        _WORKER_PREPARER.adopt(makers)
    return _WORKER_PREPARER(item)
