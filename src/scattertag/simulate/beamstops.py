"""Beamstops: linear bar, circular disk on an arm, and wedge, with blurred edges.

A beamstop is stored sparsely, as the flat indices of the pixels it shades and their
transmission (0 = opaque, 1 = clear), so applying it costs only its own area.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scattertag.geometry import Geometry

BEAMSTOPS = ("linear", "circular", "wedge")

#: Short tag of each beamstop type (the vocabulary spells them this way).
BEAMSTOP_TAGS = {
    "linear": "Linear beamstop",
    "circular": "Circular Beamstop",
    "wedge": "Wedge beamstop",
}


@dataclass(eq=False)
class Beamstop:
    """The shadow of one beamstop on the frame (kind None: no beamstop on the frame)."""

    kind: str | None
    params: dict = field(default_factory=dict)
    index: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )  # flat pixel indices
    transmission: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (len(index),) in [0, 1)

    def transmission_map(self, shape: tuple[int, int]) -> np.ndarray:
        """(rows, cols) float32 transmission, 1 where unshaded."""
        t = np.ones(shape[0] * shape[1], dtype=np.float32)
        t[self.index] = self.transmission
        return t.reshape(shape)


def _ray_distance(dx: np.ndarray, dy: np.ndarray, angle: float) -> np.ndarray:
    """Distance (pixels) of points (dx, dy) from the ray leaving the origin at ``angle``."""
    ux, uy = np.cos(angle), np.sin(angle)
    along = dx * ux + dy * uy
    across = np.abs(dx * uy - dy * ux)
    return np.where(along >= 0, across, np.hypot(dx, dy))


def _signed_distance(kind: str, dx: np.ndarray, dy: np.ndarray, p: dict) -> np.ndarray:
    """Signed distance (pixels, negative inside) to the beamstop outline."""
    if kind == "linear":
        return _ray_distance(dx, dy, p["angle"]) - p["half_width"]
    if kind == "circular":
        disk = np.hypot(dx, dy) - p["radius"]
        arm = _ray_distance(dx, dy, p["angle"]) - p["arm_half_width"]
        return np.minimum(disk, arm)
    if kind == "wedge":
        # apex behind the beam centre; the wedge opens toward the edge along ``angle``
        ax, ay = (
            dx + p["apex_offset"] * np.cos(p["angle"]),
            dy + p["apex_offset"] * np.sin(p["angle"]),
        )
        rho = np.hypot(ax, ay)
        theta = np.abs(np.angle(np.exp(1j * (np.arctan2(ay, ax) - p["angle"]))))
        excess = theta - p["half_angle"]
        return np.where(excess < 0.5 * np.pi, rho * np.sin(excess), rho)
    raise ValueError(f"unknown beamstop {kind!r}; allowed: {', '.join(BEAMSTOPS)}")


def draw_beamstop(
    geometry: Geometry, kind: str, rng: np.random.Generator, scale: float
) -> Beamstop:
    """A beamstop of ``kind`` centred on the beam; sizes in reference pixels times ``scale``.

    ``scale`` = frame side / 1000, so a beamstop hides the same q range at every size.
    The arm or bar runs from the beam toward one of the four frame edges.
    """
    if kind == "none":
        return Beamstop(None, {"kind": None})
    angle = float(rng.integers(4) * 0.5 * np.pi + rng.normal(0.0, np.radians(4.0)))
    p: dict = {
        "kind": kind,
        "angle": angle,
        "blur": float(rng.uniform(0.8, 2.5) * scale),
        "leak": float(10 ** rng.uniform(-5, -3)),
    }
    if kind == "linear":
        p["half_width"] = float(rng.uniform(10, 30) * scale)
    elif kind == "circular":
        p["radius"] = float(rng.uniform(20, 60) * scale)
        p["arm_half_width"] = float(rng.uniform(0.12, 0.3) * p["radius"])
    else:
        p["half_angle"] = float(np.radians(rng.uniform(3, 10)))
        p["apex_offset"] = float(rng.uniform(25, 60) * scale)
    cx, cy = geometry.beam_center
    rows, cols = geometry.shape
    dx = (np.arange(cols) - cx)[None, :]
    dy = (np.arange(rows) - cy)[:, None]
    d = _signed_distance(kind, dx, dy, p).ravel()
    t = p["leak"] + (1.0 - p["leak"]) * 0.5 * (1.0 + np.tanh(d / p["blur"]))
    index = np.flatnonzero(t < 0.999)
    return Beamstop(kind, p, index, t[index])
