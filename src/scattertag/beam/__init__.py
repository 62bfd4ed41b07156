"""The beam centre found in the image: the estimators and their helpers.

``center`` (the estimate, its confidence and the check of a given centre; the public API:
:func:`estimate_beam_center`, :func:`check_beam_center`), ``shadow`` (beamstop shadows and
their round edges), ``cones`` (rings of a tilted detector), ``glow`` (the direct beam's glow
beside a rod stop), ``compact`` (a small ring or sharp peak about the beam at full
resolution), ``falloff`` (an off-frame falloff with polarisation), ``ranker`` (the
learned choice among candidates), and two numerical helpers (``order_stats``, ``boxes``).
How they work and what they score: docs/beam_center.md.
"""

from scattertag.beam.center import (
    CONFIDENCE_THRESHOLD,
    BeamCenterCheck,
    BeamCenterEstimate,
    check_beam_center,
    estimate_beam_center,
)

__all__ = [
    "CONFIDENCE_THRESHOLD",
    "BeamCenterCheck",
    "BeamCenterEstimate",
    "check_beam_center",
    "estimate_beam_center",
]
