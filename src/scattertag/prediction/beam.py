"""The geometry each frame is tagged with, and where its beam centre came from.

Precedence (strongest first): given (command line, manifest, API) > PONI file > the file's
own header > estimated from the image (:func:`scattertag.beam_center.estimate_beam_center`).
The image is looked at once per file when it must give the centre, and once per geometry
when the centre comes from elsewhere: a given centre that the image contradicts gets a
warning (and the hint when x and y look swapped); frames whose geometry is known cost
nothing more.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scattertag.cache import BoundedCache
from scattertag.geometry import DetectorValues, Geometry, GeometryOptions, MissingBeamCenter


@dataclass(frozen=True)
class FrameGeometry:
    """A frame's geometry, the source of its beam centre (given, poni, header, estimated)
    and a warning ('' when none)."""

    geometry: Geometry
    source: str
    warning: str = ""


class BeamCentres:
    """Resolves frames' geometry; estimates and checks are cached (per file, per geometry)."""

    def __init__(self, size: int = 64) -> None:
        self._estimates: BoundedCache = BoundedCache(size)
        self._warnings: BoundedCache[str] = BoundedCache(size)

    def resolve(
        self,
        options: GeometryOptions,
        counts: np.ndarray,
        header: DetectorValues | None,
        valid: Callable[[], np.ndarray],
        group: object,
    ) -> FrameGeometry:
        """The FrameGeometry of ``counts``; ``valid()`` gives its valid pixels when the image
        must be looked at; ``group`` names the frames that share an estimate (the file).
        ValueError if no centre is found."""
        shape = counts.shape
        try:
            geometry, source = options.resolve(shape, ("header", header))
        except MissingBeamCenter:
            estimate = self._estimates.get((group, shape), lambda: _estimate(counts, valid()))
            if not estimate.found:
                raise ValueError(
                    "no beam centre: none given, no PONI file, none in the file's header, and "
                    f"the image gives none (confidence {estimate.confidence:.2f}); give "
                    "--beam-center X Y or --poni FILE"
                ) from None
            centre = DetectorValues((estimate.x, estimate.y))
            geometry, source = options.resolve(shape, ("header", header), ("estimated", centre))
            return FrameGeometry(geometry, source)
        warning = self._warnings.get(geometry, lambda: _check(counts, valid(), geometry, source))
        return FrameGeometry(geometry, source, warning)


def _estimate(counts: np.ndarray, valid: np.ndarray):
    """The image's own beam centre estimate."""
    from scattertag.beam_center import estimate_beam_center

    return estimate_beam_center(counts, valid)


def _check(counts: np.ndarray, valid: np.ndarray, geometry: Geometry, source: str) -> str:
    """'' if the image agrees with the geometry's centre, else a warning saying how not.

    A frame plainly isotropic about the centre agrees at a glance (~15 ms at 1000 x 1000);
    any other is checked against the image's own full estimate (~120 ms)."""
    from scattertag.beam_center import agrees_at_a_glance, check_beam_center

    cx, cy = geometry.beam_center
    if agrees_at_a_glance(counts, valid, (cx, cy)):
        return ""
    check = check_beam_center(counts, valid, (cx, cy))
    if check.agrees:
        return ""
    best = check.best
    hint = ""
    if math.hypot(cy - best.x, cx - best.y) < 0.25 * check.distance:
        hint = "; x and y swapped?"
    return (
        f"beam centre ({cx:.1f}, {cy:.1f}) from {source} disagrees with the image's "
        f"({best.x:.1f}, {best.y:.1f}, confidence {best.confidence:.2f}), "
        f"{check.distance:.0f} px away{hint}"
    )
