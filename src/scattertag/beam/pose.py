"""A tilted detector's pose, carried from one frame of a set-up to another.

Frames taken with the detector in one place share the direct-beam point, the distance and
the tilt. A frame with rings all round (a calibrant) fixes all of them by the cone fit
(:func:`scattertag.beam.cones.fit_cones`); a frame of the same set-up whose arcs are too
short for that (a few degrees of azimuth: the fit runs along a flat valley, and circles
through the arcs put the centre R^2 tan(tau) / d off) still fixes the direct-beam point
once the distance and tilt are known (:func:`scattertag.beam.cones.fit_centre`).

:class:`DetectorPose` is what a cone fit found (``BeamCenterEstimate.pose``); :class:`Arcs`
the ridge points of a frame that may be refitted with another frame's pose
(``BeamCenterEstimate.arcs``); :func:`refit` does it and decides whether the refit stands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from scattertag.beam.cones import MAX_REFINE, fit_centre
from scattertag.beam.grid import BlockGrid, on_frame

if TYPE_CHECKING:
    from scattertag.beam.center import BeamCenterEstimate

#: A refit with a pose stands when its robust rms is at most POSE_RMS times that of free
#: concentric circles on the same points, its standard error at most POSE_SIGMA of the
#: goal's tolerance (2 px on the frame, 2 % of the diagonal off it), and it lies within
#: POSE_REACH of the diagonal of the pose's own direct-beam point (module :func:`refit`).
POSE_RMS, POSE_SIGMA, POSE_REACH = 1.1, 0.5, 0.1
#: A refit that stands is backed by one other frame (the pose's): the confidence of one
#: backer (:func:`scattertag.beam.choice.confidence`) times P(within the tolerance).
POSE_CONFIDENCE = 0.7


@dataclass(frozen=True)
class DetectorPose:
    """A detector's pose found by a cone fit: the direct-beam point (x, y) and the distance
    d from the sample to it, in frame pixels; the tilt tau about the in-plane axis at
    angle phi from the x axis (``axis``), in radians (the model of
    :mod:`scattertag.beam.cones`)."""

    x: float
    y: float
    distance: float
    tilt: float
    axis: float


@dataclass(frozen=True, eq=False)
class Arcs(BlockGrid):
    """A frame's traced arcs: ridge points x, y (N,) in the pixels of the level of b x b
    blocks they were traced on (frame x = b x + (b - 1) / 2), their weights w (ridge
    strength) and arc labels (N,) int; ``shape`` the frame's (rows, cols). At most
    :data:`scattertag.beam.cones.MAX_REFINE` points, evenly strided (what a fit uses)."""

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    label: np.ndarray
    b: int
    shape: tuple[int, int]

    @classmethod
    def of(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        w: np.ndarray,
        label: np.ndarray,
        b: int,
        shape: tuple[int, int],
    ) -> Arcs | None:
        """The arcs of ridge points (level pixels), strided to MAX_REFINE points; None
        when they hold fewer than 2 arcs."""
        if x.size == 0 or np.unique(label).size < 2:
            return None
        keep = np.linspace(0, x.size - 1, min(x.size, MAX_REFINE)).astype(np.int64)
        return cls(x[keep], y[keep], w[keep], label[keep], int(b), (int(shape[0]), int(shape[1])))


def tolerance(x: float, y: float, shape: tuple[int, int]) -> float:
    """The goal's tolerance at (x, y) on a frame of ``shape``: 2 px on the frame, 2 % of the
    diagonal off it."""
    return 2.0 if on_frame(x, y, shape) else 0.02 * math.hypot(*shape)


def within(x: float, y: float, sigma: float, shape: tuple[int, int]) -> float:
    """P = 1 - exp(-t^2 / sigma^2): the chance that an error of standard deviation sigma
    (px) about frame point (x, y) stays within the goal's tolerance t (:func:`tolerance`)."""
    t = tolerance(x, y, shape)
    return 1.0 - math.exp(-(t * t) / max(sigma * sigma, 1e-12))


def refittable(est: BeamCenterEstimate) -> bool:
    """True if ``est`` may be replaced by a refit with another frame's pose: it carries
    arcs and is a ring fit (circles, not its own cone fit) or not found."""
    ring_fit = est.method == "rings"
    return est.arcs is not None and est.method != "cone" and (ring_fit or not est.found)


def refit(est: BeamCenterEstimate, pose: DetectorPose) -> BeamCenterEstimate | None:
    """``est`` with the direct-beam point of cones of ``pose``'s distance and tilt through
    its arcs (method ``pose``), or None when it may not be refitted (:func:`refittable`)
    or the refit does not stand.

    The fit starts from the pose's point and from the frame's own centre (the least cost
    wins). It stands when it explains the arcs about as well as free circles (robust rms
    at most POSE_RMS of theirs: right pose, right model, and circles have as many free
    parameters), fixes the point (standard error at most POSE_SIGMA of the tolerance)
    and lies within POSE_REACH of the diagonal of the pose's point. That reach is the
    one a frame's own cone fit may stray from its circles (``CONE_REACH``): the pose
    holds for one placement of the detector; a refit farther away is a frame of another
    set-up (same shape, same folder) or arcs that are not rings about the beam.
    Confidence POSE_CONFIDENCE x P, P = 1 - exp(-t^2 / sigma^2).
    """
    if not refittable(est) or est.arcs is None:
        return None
    arcs = est.arcs
    b = arcs.b
    starts = [arcs.from_frame(pose.x, pose.y), arcs.from_frame(est.x, est.y)]
    fit = fit_centre(
        arcs.x, arcs.y, arcs.w, arcs.label, starts, pose.distance / b, pose.tilt, pose.axis
    )
    if fit is None:
        return None
    x, y = arcs.to_frame(fit.x, fit.y)
    sigma = fit.sigma * b
    tol = tolerance(x, y, arcs.shape)
    reach = POSE_REACH * math.hypot(*arcs.shape)
    stands = (
        math.isfinite(x + y + sigma)
        and fit.rms <= POSE_RMS * fit.circle_rms
        and sigma <= POSE_SIGMA * tol
        and math.hypot(x - pose.x, y - pose.y) <= reach
    )
    if not stands:
        return None
    p = 1.0 - math.exp(-(tol * tol) / max(sigma * sigma, 1e-12))
    on = on_frame(x, y, arcs.shape)
    return replace(
        est, x=x, y=y, confidence=POSE_CONFIDENCE * p, method="pose", on_frame=on, sigma=sigma
    )
