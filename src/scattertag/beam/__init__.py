"""The beam centre found in the image: the estimators and their helpers.

``center`` (the public API: :func:`estimate_beam_center`, :func:`check_beam_center`, and the
estimate's order of steps) reads a frame through ``pyramid`` (valid pixels, the levels);
the estimators are ``gradient`` (gradient lines), ``symmetry`` (point symmetry), ``rings``
(ridges, arcs and circle fits), ``shadow`` (beamstop shadows and their round edges), run
together by ``candidates``; ``evidence`` (what the radial profile about a point shows) and
``choice`` (rules, ``ranker``, confidence) pick one; ``grazing`` (grazing incidence, with
``horizon``) and ``fallbacks`` (``glow``, ``compact``, ``outline``, ``falloff``) are tried
where none is found; ``polish`` refines the choice (and tries tilted ``cones``, ``pose``).
Numerical helpers: ``least_squares`` (the one soft-L1 solver), ``order_stats``, ``boxes``,
``dips``, ``reflection``, ``radial``, ``grid``.
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
