"""The geometry each frame is tagged with, and where its beam centre came from.

Precedence (strongest first): given (command line, manifest, API) > PONI file > the file's
own header > estimated from the image (:func:`scattertag.beam.center.estimate_beam_center`),
or settled from the frames of its set-up (``series``: :mod:`scattertag.prediction.series`
gives such frames a :class:`SeriesCentre` and tags them again).
The image is looked at once per file when it must give the centre, and once per geometry
when the centre comes from elsewhere: a given centre that the image contradicts gets a
warning (and the hint when x and y look swapped); frames whose geometry is known cost
nothing more.

That look costs ~5-12 ms at 1000 x 1000, a third of tagging a frame, and an archive taken
with many beam centres pays it for nearly every frame. So the verdict is kept on disk
beside the geometry set-ups (:class:`~scattertag.features.cache.SetupCache`), keyed by the
frame (file, size, modification time, frame index), the centre and its source, the valid
pixels and the code that decides it: a re-run of the same files reads it back (~1 ms).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from scattertag.cache import BoundedCache, files_digest
from scattertag.features.cache import SetupCache
from scattertag.geometry import DetectorValues, Geometry, GeometryOptions, MissingBeamCenter
from scattertag.io.readers import split_source

if TYPE_CHECKING:
    from scattertag.beam.center import BeamCenterEstimate


#: The method of a frame's estimate when it took its set-up's centre without a full
#: estimate, showing nothing either way (:func:`_taken`).
UNSEEN = "unseen"

#: Significant digits to which two headers' pixel sizes and distances must agree for their
#: frames to be one set-up (:func:`setup_values`).
SETUP_DIGITS = 3


def setup_values(header: DetectorValues | None) -> tuple[float | None, float | None]:
    """What a file's header says of its set-up besides the centre: (pixel size, distance)
    in metres to SETUP_DIGITS significant digits, None where it is silent.

    Frames whose headers state another distance or pixel size come from another detector
    placement, whose direct-beam point moves with it; readbacks that jitter in the 4th digit
    are still one set-up. The energy is left out: it moves the rings, not the beam."""
    if header is None:
        return None, None
    pixel, distance = header.pixel_size, header.distance
    return (
        None if pixel is None else float(f"{pixel:.{SETUP_DIGITS}g}"),
        None if distance is None else float(f"{distance:.{SETUP_DIGITS}g}"),
    )


def same_setup(a: tuple, b: tuple) -> bool:
    """True if two headers' set-up values (:func:`setup_values`) may be one set-up: each
    value equal, or one header silent on it."""
    return all(u is None or v is None or u == v for u, v in zip(a, b))


def merged_setups(values: list[tuple]) -> list[tuple]:
    """The set-up values frames of one folder and shape are grouped by: all the values
    stated (merged) when every two of them may be one set-up, the silent frames included;
    else each frame's own (silent frames apart: they cannot be placed)."""
    stated = {v for v in values if any(u is not None for u in v)}
    if all(same_setup(a, b) for a in stated for b in stated):
        merged = tuple(
            next((v[i] for v in stated if v[i] is not None), None) for i in range(len(values[0]))
        )
        return [merged] * len(values)
    return list(values)


@dataclass(frozen=True)
class Estimated:
    """A frame's own beam-centre estimate (a ``BeamCenterEstimate``, found or not), the
    frame's shape (rows, cols) and its header's set-up values (:func:`setup_values`): what
    its series is settled from."""

    estimate: BeamCenterEstimate
    shape: tuple[int, int]
    setup: tuple[float | None, float | None] = (None, None)


@dataclass(frozen=True)
class SeriesCentre:
    """A beam centre (x, y) settled from the frames of a set-up, and the note that says
    where it came from (the row's warning).

    ``glance``: a centre the set-up settled in an earlier window, offered to a later frame
    of frames of ``shape`` (rows, cols) and header values ``setup`` (:func:`setup_values`):
    a frame of that shape and those values takes it as a found estimate of ``confidence``
    when plainly isotropic about it, and with the note ``unseen`` (no vote in its window's
    series) when it shows nothing either way
    (:func:`scattertag.beam.center.settled_glance`, ~9-15 ms against ~65 ms for an
    estimate at 1000 x 1000); a frame that shows another centre is estimated as usual.
    """

    x: float
    y: float
    note: str
    glance: bool = False
    shape: tuple[int, int] | None = None
    confidence: float = 1.0
    setup: tuple[float | None, float | None] = (None, None)
    unseen: str = ""


@dataclass(frozen=True)
class FrameGeometry:
    """A frame's geometry, the source of its beam centre (given, poni, header, estimated,
    series), a warning ('' when none) and, when the image gave the centre, its estimate."""

    geometry: Geometry
    source: str
    warning: str = ""
    estimated: Estimated | None = None


class NoBeamCentre(ValueError):
    """The frame needs its beam centre from the image, and the image gives none; carries
    the estimate (not found) for the frame's series."""

    def __init__(self, message: str, estimated: Estimated) -> None:
        super().__init__(message)
        self.estimated = estimated


class BeamCentres:
    """Resolves frames' geometry; estimates and checks are cached (per file, per geometry),
    and the checks' verdicts on disk too when ``verdicts`` is given (module docstring)."""

    def __init__(self, size: int = 64, verdicts: SetupCache | None = None) -> None:
        self._estimates: BoundedCache = BoundedCache(size)
        self._warnings: BoundedCache[str] = BoundedCache(size)
        self.verdicts = verdicts

    def resolve(
        self,
        options: GeometryOptions,
        counts: np.ndarray,
        header: DetectorValues | None,
        valid: Callable[[], np.ndarray],
        group: object,
        frame: tuple[str, int] | None = None,
        series: SeriesCentre | None = None,
    ) -> FrameGeometry:
        """The FrameGeometry of ``counts``; ``valid()`` gives its valid pixels when the image
        must be looked at; ``group`` names the frames that share an estimate (the file);
        ``frame``: (file location, frame index) of counts read from a file, whose verdict
        on a given centre may be kept on disk (None: an array, checked each time);
        ``series``: the centre its set-up settled, used instead of the image's when
        nothing stronger gives one (source ``series``, its note the warning).
        NoBeamCentre (a ValueError) if no centre is found."""
        shape = counts.shape
        try:
            geometry, source = options.resolve(shape, ("header", header))
        except MissingBeamCenter:
            from scattertag.beam.center import CONTRADICTED, UNINFORMATIVE

            setup = setup_values(header)
            verdict = None if series is None else _glance(series, counts, valid, setup)
            if series is not None and verdict != CONTRADICTED:
                centre = DetectorValues((series.x, series.y))
                geometry, source = options.resolve(shape, ("header", header), ("series", centre))
                seen = verdict != UNINFORMATIVE
                taken = _taken(series, geometry, setup, seen)
                return FrameGeometry(
                    geometry, source, series.note if seen else series.unseen, taken
                )
            estimate = self._estimates.get((group, shape), lambda: _estimate(counts, valid()))
            estimated = Estimated(estimate, (int(shape[0]), int(shape[1])), setup)
            if not estimate.found:
                raise NoBeamCentre(
                    "no beam centre: none given, no PONI file, none in the file's header, and "
                    f"the image gives none (confidence {estimate.confidence:.2f}); give "
                    "--beam-center X Y or --poni FILE",
                    estimated,
                ) from None
            centre = DetectorValues((estimate.x, estimate.y))
            geometry, source = options.resolve(shape, ("header", header), ("estimated", centre))
            return FrameGeometry(geometry, source, estimated=estimated)
        warning = self._warnings.get(
            geometry, lambda: self._verdict(counts, valid, geometry, source, frame)
        )
        return FrameGeometry(geometry, source, warning)

    def _verdict(
        self,
        counts: np.ndarray,
        valid: Callable[[], np.ndarray],
        geometry: Geometry,
        source: str,
        frame: tuple[str, int] | None,
    ) -> str:
        """:func:`_check`'s warning, read from ``verdicts`` if this frame's was kept, else
        computed (and kept)."""
        ok = valid()
        key = None if self.verdicts is None else verdict_key(frame, ok, geometry, source)
        if key is not None:
            kept = self.verdicts.load(key)  # type: ignore[union-attr]
            if kept is not None and "warning" in kept:
                return kept["warning"].tobytes().decode()
        warning = _check(counts, ok, geometry, source)
        if key is not None:
            text = np.frombuffer(warning.encode(), np.uint8)
            self.verdicts.store(key, {"warning": text})  # type: ignore[union-attr]
        return warning


def verdict_key(
    frame: tuple[str, int] | None, valid: np.ndarray, geometry: Geometry, source: str
) -> str | None:
    """The set-up cache key of a check's verdict on ``frame`` (location, index): the file
    (path, size, modification time), the frame, the valid pixels, the centre and its source
    and :func:`check_code`; None for an array or a file that cannot be looked at."""
    if frame is None or not frame[0]:
        return None
    path, dataset = split_source(frame[0])
    try:
        stat = os.stat(path)
    except OSError:
        return None
    file = [os.path.abspath(path), dataset, stat.st_size, stat.st_mtime_ns, frame[1]]
    described = ["beam centre check", check_code(), file, geometry.to_dict(), source]
    return SetupCache.key(*described, mask=valid)


@cache
def check_code() -> str:
    """Digest of what decides a check (:func:`_check`): the source of the modules it runs,
    the beam-centre ranker's weights and numpy's and scipy's versions; a kept verdict is
    used only while these are the same."""
    import scipy

    from scattertag import beam
    from scattertag.io import masks
    from scattertag.simulate import tilt

    root = Path(str(beam.__file__)).parent.parent
    files = sorted(Path(str(beam.__file__)).parent.glob("*.py"))  # every beam-centre module
    files += [Path(str(m.__file__)) for m in (tilt, masks)]
    files += [Path(__file__), root / "pretrained" / "beam_center_ranker.json"]  # _check's words
    return files_digest(root, files, f"numpy {np.__version__} scipy {scipy.__version__}")


def _glance(
    series: SeriesCentre,
    counts: np.ndarray,
    valid: Callable[[], np.ndarray],
    setup: tuple[float | None, float | None],
) -> str:
    """A frame of header values ``setup`` offered its series' centre: AGREES for a centre its
    window settled, else :func:`scattertag.beam.center.settled_glance`'s verdict
    (CONTRADICTED for a frame of another shape or stated set-up)."""
    from scattertag.beam.center import AGREES, CONTRADICTED, settled_glance

    if not series.glance:
        return AGREES
    if series.shape != counts.shape or not same_setup(series.setup, setup):
        return CONTRADICTED
    return settled_glance(counts, valid(), (series.x, series.y))


def _taken(
    series: SeriesCentre,
    geometry: Geometry,
    setup: tuple[float | None, float | None],
    seen: bool = True,
) -> Estimated | None:
    """The estimate a frame that took a series' centre at a glance gives its window's
    series: found, method ``series``; taken ``seen=False`` (the frame showed nothing),
    method UNSEEN and no confidence (no vote; :meth:`SeriesPooling.revise` estimates it
    after all if its window shows another set-up); None for a centre its window settled."""
    from scattertag.beam.center import BeamCenterEstimate

    if not series.glance:
        return None
    on = geometry.beam_on_frame
    method, confidence = ("series", series.confidence) if seen else (UNSEEN, 0.0)
    estimate = BeamCenterEstimate(series.x, series.y, confidence, method, on)
    return Estimated(estimate, geometry.shape, setup)


def _estimate(counts: np.ndarray, valid: np.ndarray):
    """The image's own beam centre estimate."""
    from scattertag.beam.center import estimate_beam_center

    return estimate_beam_center(counts, valid, guess=False)  # not found: an error row


def _check(counts: np.ndarray, valid: np.ndarray, geometry: Geometry, source: str) -> str:
    """'' if the image agrees with the geometry's centre, else a warning saying how not.

    A frame plainly isotropic about the centre agrees at a glance (~15 ms at 1000 x 1000);
    any other is checked against the image's own full estimate (~120 ms)."""
    from scattertag.beam.center import agrees_at_a_glance, check_beam_center

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
