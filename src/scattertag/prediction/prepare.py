"""Turn one work item into the network's two views, frame by frame.

This is the part of tagging that runs in worker processes: read the frames, resolve the
geometry, build the static mask (mask file and the file's own pixel mask) and make the
image and Fourier-Bessel views with exactly the preprocessing used in training
(``scattertag.features.views``), which applies the valid-pixel rule of
:mod:`scattertag.io.masks` once per frame. Setting up a ViewMaker (the FB operator for one
geometry and mask) is the expensive step, so one is kept per distinct (geometry, static
mask) and reused for every frame that shares it; ViewMakers set up in one process can be
handed to another (:meth:`Preparer.adopt`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from scattertag.cache import BoundedCache
from scattertag.geometry import Geometry, poni_detector_valid
from scattertag.io.failures import failure_message
from scattertag.io.masks import dummy_valid, mask_digest, read_mask, valid_pixels
from scattertag.io.readers import Frame, check_frame, check_shape, read_frames
from scattertag.parallel import limit_threads, reuse_freed_memory
from scattertag.prediction.beam import BeamCentres, Estimated, FrameGeometry
from scattertag.prediction.sources import Item
from scattertag.signals import worker_ignores_interrupts


@dataclass
class Views:
    """The network input for one frame, or why there is none.

    image : float32 ViewSpec.image_shape or None; coeff : float32 (C, N+1, K) or None.
    unfamiliarity : how unlike a scattering frame it is, in decades (None if no views);
    see :mod:`scattertag.features.unfamiliarity`.
    geometry : the frame's geometry and the source of its beam centre (None if unknown).
    estimated : the frame's own beam-centre estimate when the image had to give the
        centre (found or not: a frame not found has an error and this), else None.
    """

    source: str
    frame: int | None
    image: np.ndarray | None = None
    coeff: np.ndarray | None = None
    error: str = ""
    geometry: FrameGeometry | None = None
    unfamiliarity: float | None = None
    estimated: Estimated | None = None


def item_frames(item: Item) -> Iterator[Frame]:
    """The frames of an item: read from its file, or taken from its array."""
    if item.counts is None:
        yield from read_frames(item.location, item.frame)
        return
    stack = item.counts if item.counts.ndim == 3 else item.counts[None]
    check_shape(item.source, stack.shape)
    check_frame(item.source, item.frame, len(stack))
    for i in range(len(stack)) if item.frame is None else [item.frame]:
        yield Frame(stack[i], None, i)


class Preparer:
    """Callable item -> list[Views], caching ViewMakers and mask files between calls."""

    def __init__(self, view_spec, cache_size: int = 8) -> None:
        from scattertag.features.cache import default_cache

        self.view_spec = view_spec
        self.setup_cache = default_cache()  # set-ups on disk, shared by processes and runs
        self._makers: BoundedCache = BoundedCache(cache_size)
        self._masks: BoundedCache[np.ndarray] = BoundedCache(cache_size)
        self.centres = BeamCentres(verdicts=self.setup_cache)

    def __call__(self, item: Item) -> list[Views]:
        """The views of every frame of ``item`` (one entry with the error if it fails)."""
        if item.error:
            return [Views(item.source, item.frame, error=item.error)]
        out: list[Views] = []
        try:
            out.extend(self._views(item, frame) for frame in item_frames(item))
        except Exception as exc:  # any problem with this file becomes its row
            out.append(Views(item.source, item.frame, error=failure_message(item.source, exc)))
        if not out:
            out.append(
                Views(item.source, item.frame, error=f"{item.source}: the file holds no frames")
            )
        return out

    def _views(self, item: Item, frame: Frame) -> Views:
        """Views of one frame; a per-frame problem becomes that row's error."""
        placed = None
        try:
            counts = np.asarray(frame.counts)
            if counts.dtype.kind not in "uif":  # complex, bool, text: not detector counts
                raise ValueError(f"pixel type {counts.dtype} is not counts (integer or float)")
            placed, static, extra = self.frame_setup(item, frame)
            known = item.options.knows_scale(("header", frame.header))  # type: ignore[union-attr]
            maker = self.maker(placed.geometry, static, known)
            image, coeff, unfamiliarity = maker.with_unfamiliarity(counts, extra)
        except Exception as exc:  # any problem with this frame becomes its row
            error = failure_message(item.source, exc, frame.index)
            own = placed.estimated if placed is not None else getattr(exc, "estimated", None)
            return Views(item.source, frame.index, error=error, geometry=placed, estimated=own)
        image, coeff = np.asarray(image, np.float32), np.asarray(coeff, np.float32)
        return Views(
            item.source,
            frame.index,
            image,
            coeff,
            geometry=placed,
            unfamiliarity=unfamiliarity,
            estimated=placed.estimated,
        )

    def frame_setup(
        self, item: Item, frame: Frame
    ) -> tuple[FrameGeometry, np.ndarray | None, np.ndarray | None]:
        """(geometry, static mask, per-frame mask) of one frame, as tagging uses them.

        The pixels tagging uses are ``valid_pixels(counts, static, per_frame)``.
        """
        options = item.options
        assert options is not None, "an item without options carries an error"
        counts = np.asarray(frame.counts)
        static = self._static_mask(options.mask, counts.shape, frame.valid)
        detector = None if options.poni is None else poni_detector_valid(options.poni)
        if detector is not None:  # the PONI file's detector masks its module gaps
            if detector.shape != counts.shape:
                raise ValueError(
                    f"{options.poni}: its detector is {detector.shape[0]} x {detector.shape[1]}, "
                    f"the frame {counts.shape[0]} x {counts.shape[1]}"
                )
            static = detector if static is None else static & detector
        extra = dummy_valid(counts, options.dummy, options.delta_dummy)
        group = item.location or id(item.counts)
        where = None if item.counts is not None else (item.location, frame.index)
        placed = self.centres.resolve(
            options,
            counts,
            frame.header,
            lambda: valid_pixels(counts, static, extra),
            group,
            where,
            item.centre,
        )
        return placed, static, extra

    def valid(self, item: Item, frame: Frame) -> np.ndarray:
        """(rows, cols) bool: the pixels of ``frame`` that tagging uses."""
        _, static, extra = self.frame_setup(item, frame)
        return valid_pixels(np.asarray(frame.counts), static, extra)

    @property
    def makers(self) -> dict:
        """The ViewMakers set up so far, by (geometry, mask digest)."""
        return dict(self._makers.items())

    def adopt(self, makers: dict) -> None:
        """Take ViewMakers set up elsewhere (by the parent process) instead of setting them up."""
        for key, maker in makers.items():
            self._makers.put(key, maker)

    def _static_mask(
        self, mask: object, shape: tuple[int, int], file_valid: np.ndarray | None
    ) -> np.ndarray | None:
        """Valid pixels from the mask (file or array) and the file's own mask (None if neither)."""
        if mask is None:
            return file_valid
        if isinstance(mask, np.ndarray):
            name, valid = "mask", mask == 0
        else:
            name, valid = str(mask), self._masks.get(str(mask), lambda: read_mask(str(mask)))
        if valid.shape != shape:
            raise ValueError(
                f"{name}: mask is {valid.shape[0]} x {valid.shape[1]}, "
                f"frame is {shape[0]} x {shape[1]}"
            )
        return valid if file_valid is None else valid & file_valid

    def maker(self, geometry: Geometry, static: np.ndarray | None, known: bool = True):
        """The ViewMaker for this geometry and static mask, built once; ``known``: pixel size,
        distance and energy were given, not defaulted (a q view is in q only then)."""
        from scattertag.features.views import ViewMaker

        key = (geometry, None if static is None else mask_digest(static), known)
        return self._makers.get(
            key, lambda: ViewMaker(self.view_spec, geometry, static, self.setup_cache, known)
        )


_WORKER_PREPARER: Preparer | None = None


def start_worker(view_spec, preparer: Preparer | None = None) -> None:
    """Process-pool initializer: one Preparer (and ViewMaker cache) per worker process;
    ``preparer``: the parent's, in a forked worker (its set-ups come for free)."""
    global _WORKER_PREPARER
    worker_ignores_interrupts()
    limit_threads(1)  # parallelism comes from the processes
    reuse_freed_memory()  # the same large arrays every frame: no fresh pages each time
    _WORKER_PREPARER = Preparer(view_spec) if preparer is None else preparer


def prepare_in_worker(item: Item, makers: dict | None = None) -> list[Views]:
    """Run this worker's Preparer on one item, first adopting ``makers`` if given."""
    assert _WORKER_PREPARER is not None, "start_worker was not run in this process"
    if makers:
        _WORKER_PREPARER.adopt(makers)
    return _WORKER_PREPARER(item)
