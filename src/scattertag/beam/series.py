"""The frames of one set-up looked at together: a pose and a centre they share.

Frames taken with the detector in one place (one beamline set-up) share the direct-beam
point, the distance and the tilt, but :func:`scattertag.beam.center.estimate_beam_center`
sees one frame at a time: a frame whose arcs are too short for a cone fit gets the
circles' centre (tens of pixels off on a tilted detector), and a frame with a broad halo
alone gets none. :func:`settle` takes the estimates of one set-up (the caller decides what
a set-up is: ``predict`` takes a folder, a frame shape, the geometry options and the
headers' pixel size and distance) and:

1. takes the detector pose of the series' most confident cone fit (a calibrant, any frame
   with rings all round), if there is one;
2. refits every ring fit and every frame not found that carries arcs as cones of that
   pose, the direct-beam point free (:func:`scattertag.beam.pose.refit`, method ``pose``);
3. if the found centres (own and refitted) of at least MIN_FOUND frames agree (every one
   within the goal's tolerance, 2 px on the frame or 2 % of the diagonal off it, of
   their median), gives frames still not found that median (method ``series``).

A folder can hold several set-ups with frames of one shape (real-dev's 981 x 1043 frames
come from four beam centres), so found centres that disagree are never pooled: the
frames not found then stay not found (each keeps its own estimate), and refits stand on
their own evidence (the pose's tests) only. Every changed estimate says which frames it
came from (:class:`Settled`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

from scattertag.beam.center import BeamCenterEstimate
from scattertag.beam.grid import on_frame
from scattertag.beam.pose import DetectorPose, refit, tolerance

#: Found centres needed before frames not found adopt theirs: two frames that agree
#: show that the group is one set-up; one alone could be a set-up of its own.
MIN_FOUND = 2


@dataclass(frozen=True)
class Settled:
    """A frame's estimate after its series: ``how`` it was settled (``own``: its own
    estimate; ``pose``: refitted with the pose of frame ``origin[0]``; ``series``: a frame
    not found given the median of the agreeing found centres of frames ``origin``)."""

    estimate: BeamCenterEstimate
    how: str = "own"
    origin: tuple[int, ...] = ()


def series_pose(estimates: Sequence[BeamCenterEstimate]) -> int | None:
    """The index of the series' best cone fit (found, with a pose): the highest confidence,
    then the least standard error; None if there is none."""
    posed = [i for i, e in enumerate(estimates) if e.pose is not None and e.found]
    if not posed:
        return None
    return max(posed, key=lambda i: (estimates[i].confidence, -estimates[i].sigma))


def agreeing_centre(
    estimates: Sequence[BeamCenterEstimate], shape: tuple[int, int]
) -> tuple[float, float] | None:
    """The median (x, y) of ``estimates`` if every one lies within the goal's tolerance
    (:func:`scattertag.beam.pose.tolerance`, at the median) of it, else None."""
    if not estimates:
        return None
    mx = statistics.median(e.x for e in estimates)
    my = statistics.median(e.y for e in estimates)
    tol = tolerance(mx, my, shape)
    if all(math.hypot(e.x - mx, e.y - my) <= tol for e in estimates):
        return mx, my
    return None


def shows_another(
    found: Sequence[BeamCenterEstimate], x: float, y: float, shape: tuple[int, int]
) -> bool:
    """True if at least MIN_FOUND of the ``found`` centres lie farther than the goal's
    tolerance from (x, y) and within twice it of one of them (two such agree as
    :func:`agreeing_centre` asks: each within the tolerance of their midpoint): another
    set-up, a centre of its own shown twice, among frames of ``shape``; found centres that
    stray alone do not."""
    away = [e for e in found if math.hypot(e.x - x, e.y - y) > tolerance(x, y, shape)]
    return any(
        sum(math.hypot(o.x - e.x, o.y - e.y) <= 2.0 * tolerance(e.x, e.y, shape) for o in away)
        >= MIN_FOUND
        for e in away
    )


def settle(estimates: Sequence[BeamCenterEstimate], shape: tuple[int, int]) -> list[Settled]:
    """Each frame's estimate after looking at the series (module docstring); ``estimates``
    are those of the frames of one set-up, all of ``shape`` (rows, cols)."""
    out = [Settled(e) for e in estimates]
    source = series_pose(estimates)
    if source is not None:
        pose: DetectorPose = estimates[source].pose  # type: ignore[assignment]
        for i, e in enumerate(estimates):
            posed = None if i == source else refit(e, pose)
            if posed is not None:
                out[i] = Settled(posed, "pose", (source,))
    found = [i for i, s in enumerate(out) if s.estimate.found]
    lost = [i for i, s in enumerate(out) if not s.estimate.found]
    if len(found) < MIN_FOUND or not lost:
        return out
    centre = agreeing_centre([out[i].estimate for i in found], shape)
    if centre is None:
        return out
    x, y = centre
    spread = max(math.hypot(out[i].estimate.x - x, out[i].estimate.y - y) for i in found)
    sigma = max(spread, statistics.median(out[i].estimate.sigma for i in found))
    confidence = min(out[i].estimate.confidence for i in found)
    on = on_frame(x, y, shape)
    for i in lost:
        adopted = replace(
            out[i].estimate,
            x=x,
            y=y,
            confidence=confidence,
            method="series",
            on_frame=on,
            sigma=sigma,
            pose=None,
        )
        out[i] = Settled(adopted, "series", tuple(found))
    return out
