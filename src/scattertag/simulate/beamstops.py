"""Beamstops: linear bar, circular disk on an arm, and wedge, with blurred edges; thin rods,
paddles and disks on arms from any direction, soft-edged and semi-transparent; and the
shadows of sample environments (a stage or nozzle edge, a cell's circular aperture).

A beamstop is stored sparsely, as the flat indices of the pixels it shades and their
transmission (0 = opaque, 1 = clear), so applying it costs only its own area.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scattertag.geometry import Geometry

BEAMSTOPS = ("linear", "circular", "wedge", "rod", "paddle", "disk")

#: Short tag of each beamstop type (the vocabulary spells them this way).
BEAMSTOP_TAGS = {
    "linear": "Linear beamstop",
    "circular": "Circular Beamstop",
    "wedge": "Wedge beamstop",
    "rod": "Linear beamstop",
    "paddle": "Linear beamstop",
    "disk": "Circular Beamstop",
}
#: Semi-transparent beamstops (rod, paddle, disk): this fraction passes 1e-3 to 0.3.
SEMI_TRANSPARENT = 0.3


@dataclass(eq=False)
class Beamstop:
    """The shadow of one beamstop on the frame (kind None: no beamstop on the frame)."""

    kind: str | None
    params: dict = field(default_factory=dict)
    index: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )  # flat pixel indices
    transmission: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (len(index),) in [0, 1)

    def moved(self, geometry: Geometry, **changes: float) -> Beamstop:
        """The same stop shaded about ``geometry``'s beam centre, its parameters ``changes``
        (e.g. a paddle's ``center``, a wedge's ``apex_offset``, pixels) replaced."""
        if self.kind is None or self.kind == "shadow":  # a shadow is placed on the frame
            return self
        return _shade(geometry, self.kind, {**self.params, **changes}, 1.0)

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
    if kind in ("linear", "rod"):
        return _ray_distance(dx, dy, p["angle"]) - p["half_width"]
    if kind == "paddle":  # a rectangle about the beam, on a thin arm along ``angle``
        c, s = np.cos(p["angle"]), np.sin(p["angle"])
        u = dx * c + dy * s - p["center"]
        v = np.abs(dy * c - dx * s)
        box = np.maximum(np.abs(u) - p["half_length"], v - p["half_width"])
        arm = _ray_distance(dx, dy, p["angle"]) - p["arm_half_width"]
        return np.minimum(box, arm)
    if kind in ("circular", "disk"):
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
    if kind in ("rod", "paddle", "disk"):
        return _shade(geometry, kind, _any_direction_params(kind, rng, scale), scale)
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
    return _shade(geometry, kind, p, scale)


def _shade(geometry: Geometry, kind: str, p: dict, scale: float) -> Beamstop:
    """The beamstop's shadow: transmission leak + (1 - leak) (1 + tanh(d / blur)) / 2."""
    cx, cy = geometry.beam_center
    rows, cols = geometry.shape
    dx = (np.arange(cols) - cx)[None, :]
    dy = (np.arange(rows) - cy)[:, None]
    d = _signed_distance(kind, dx, dy, p).ravel()
    t = p["leak"] + (1.0 - p["leak"]) * 0.5 * (1.0 + np.tanh(d / p["blur"]))
    index = np.flatnonzero(t < 0.999)
    return Beamstop(kind, p, index, t[index])


def _any_direction_params(kind: str, rng: np.random.Generator, scale: float) -> dict:
    """Rod (thin bar), paddle (rectangle on an arm) or disk on an arm, from any direction.

    Sizes in reference pixels x ``scale``: rod half-width 1.5-10, paddle half-length 10-60
    and half-width 6-40, disk radius 5-60; edges blurred 0.5-10; 30 % semi-transparent
    (1e-3-0.3 passes), the others leak 1e-5-1e-3.
    """
    semi = rng.random() < SEMI_TRANSPARENT
    p: dict = {
        "kind": kind,
        "angle": float(rng.uniform(-np.pi, np.pi)),
        "blur": float(np.exp(rng.uniform(np.log(0.5), np.log(10.0))) * scale),
        "leak": float(10 ** rng.uniform(-3, np.log10(0.3)) if semi else 10 ** rng.uniform(-5, -3)),
    }
    if kind == "rod":
        p["half_width"] = float(rng.uniform(1.5, 10) * scale)
    elif kind == "paddle":
        p["half_length"] = float(rng.uniform(10, 60) * scale)
        p["half_width"] = float(rng.uniform(6, 40) * scale)
        p["center"] = float(rng.uniform(-0.3, 0.6) * p["half_length"])
        p["arm_half_width"] = float(rng.uniform(1.0, 4.0) * scale)
    else:
        p["radius"] = float(rng.uniform(5, 60) * scale)
        p["arm_half_width"] = float(rng.uniform(0.08, 0.3) * p["radius"])
    return p


#: Sample-environment shadows: "edge" (a stage, nozzle or window frame cuts in from a side)
#: or "aperture" (only a disk about the beam is open: a cell's window or cone).
SHADOWS = ("edge", "aperture")


def draw_shadow(geometry: Geometry, rng: np.random.Generator, scale: float) -> Beamstop:
    """A sample-environment shadow, stored as a beamstop of kind "shadow" (it carries no tag).

    edge: a straight soft edge 5-35 % of the frame in from one side, tilted up to 20
    degrees, passing 0-30 %; aperture: open within 0.35-0.8 frame sides of a point near
    the beam, opaque outside. Blur 2-20 reference pixels.
    """
    rows, cols = geometry.shape
    style = SHADOWS[int(rng.integers(len(SHADOWS)))]
    p: dict = {
        "kind": "shadow",
        "style": style,
        "blur": float(rng.uniform(2.0, 20.0) * scale),
        "leak": float(rng.uniform(0.0, 0.3)) if style == "edge" else 0.0,
    }
    y, x = np.mgrid[:rows, :cols].astype(np.float64)
    if style == "edge":
        side = int(rng.integers(4))
        normal = side * 0.5 * np.pi + float(rng.normal(0.0, np.radians(10.0)))
        depth = float(rng.uniform(0.05, 0.35))
        p.update(side=side, normal=normal, depth=depth)
        # points at the frame's centre project to 0; the shadow is beyond 0.5 - depth
        u = (x - cols / 2) * np.cos(normal) + (y - rows / 2) * np.sin(normal)
        d = (0.5 - depth) * max(rows, cols) - u
    else:
        cx, cy = geometry.beam_center
        radius = float(rng.uniform(0.35, 0.8) * max(rows, cols))
        shift = rng.normal(0.0, 0.05 * max(rows, cols), 2)
        p.update(radius=radius, center=[float(cx + shift[0]), float(cy + shift[1])])
        d = radius - np.hypot(x - p["center"][0], y - p["center"][1])
    t = p["leak"] + (1.0 - p["leak"]) * 0.5 * (1.0 + np.tanh(d.ravel() / p["blur"]))
    index = np.flatnonzero(t < 0.999)
    return Beamstop("shadow", p, index, t[index])
