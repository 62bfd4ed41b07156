"""A detector tilted out of the plane normal to the beam.

WAXS detectors are often tilted (10-40 degrees) to reach high scattering angles; rings
then fall on the detector as ellipses (conics) about the direct-beam point, not circles.
Lab frame: z along the beam, x and y along the detector's columns and rows when it is
not tilted; the sample at the origin. The detector plane passes through the direct-beam
point D = (0, 0, d) (``distance`` d in metres) and is turned by ``angle`` tau about the
in-plane axis a = (cos phi, sin phi, 0) through D (``axis`` phi, from the columns
towards the rows). A pixel (x, y) sits at

    P = D + s (x - cx) e_x + s (y - cy) e_y,   e_x = R x^, e_y = R y^, n = R z^,

with s the pixel size, (cx, cy) the direct-beam point in pixels and R the rotation by
tau about a. Its scattering angle is 2 theta = angle(P, z), its azimuth the lab chi =
atan2(P_y, P_x), and its solid angle relative to the direct-beam pixel
(d / |P|)^2 (u . n) / cos(tau) with u = P / |P| (cos^3(2 theta) untilted). This is
pyFAI's Fit2D geometry (``setFit2D(directDist, centerX, centerY, tilt,
tiltPlanRotation)``) with ``tilt`` = tau and ``tiltPlanRotation`` = phi + 90 degrees;
``tests/test_simulate_tilt.py`` checks the two against each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scattertag.geometry import Geometry

#: Tilted detectors whose frame reaches beyond this scattering angle are tilted less.
MAX_TWO_THETA = np.radians(80.0)


@dataclass(frozen=True)
class Tilt:
    """Tilt of the detector: ``angle`` tau and ``axis`` phi, radians (see the module)."""

    angle: float
    axis: float

    def rotation(self) -> np.ndarray:
        """(3, 3) rotation R by ``angle`` about (cos axis, sin axis, 0) (Rodrigues)."""
        a = np.array([np.cos(self.axis), np.sin(self.axis), 0.0])
        k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
        return np.eye(3) + np.sin(self.angle) * k + (1 - np.cos(self.angle)) * (k @ k)

    def to_dict(self) -> dict:
        """Angles in degrees, and pyFAI's Fit2D names for them."""
        return {
            "tilt_deg": float(np.degrees(self.angle)),
            "tilt_plan_rotation_deg": float(np.degrees(self.axis) + 90.0),
        }


def pixel_positions(geometry: Geometry, tilt: Tilt, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(..., 3) lab positions (metres) of detector points (x, y) in pixels."""
    cx, cy = geometry.beam_center
    rot = tilt.rotation()
    s = geometry.pixel_size
    dx, dy = (np.asarray(x, dtype=np.float64) - cx) * s, (np.asarray(y, dtype=np.float64) - cy) * s
    return (
        np.array([0.0, 0.0, geometry.distance])
        + dx[..., None] * rot[:, 0]
        + dy[..., None] * rot[:, 1]
    )


def pixel_angles(
    geometry: Geometry, tilt: Tilt, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scattering angle 2 theta, lab azimuth chi (radians) and relative solid angle of points."""
    p = pixel_positions(geometry, tilt, x, y)
    length = np.linalg.norm(p, axis=-1)
    two_theta = np.arccos(np.clip(p[..., 2] / length, -1.0, 1.0))
    chi = np.arctan2(p[..., 1], p[..., 0])
    normal = tilt.rotation()[:, 2]
    cos_incidence = np.abs(p @ normal) / length
    solid = (geometry.distance / length) ** 2 * cos_incidence / np.cos(tilt.angle)
    return two_theta, chi, solid


def frame_maps(geometry: Geometry, tilt: Tilt) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols) maps of 2 theta, chi (radians, float64) and relative solid angle."""
    rows, cols = geometry.shape
    y, x = np.mgrid[0:rows, 0:cols]
    return pixel_angles(geometry, tilt, x, y)


def equivalent_radius(geometry: Geometry, two_theta: np.ndarray) -> np.ndarray:
    """Radius (pixels) at which an untilted detector at the same distance sees 2 theta:
    d tan(2 theta) / s, so that ``geometry.q_of_radius`` gives the pixel's q."""
    return geometry.distance * np.tan(two_theta) / geometry.pixel_size


def detector_xy(
    geometry: Geometry, tilt: Tilt, radius: np.ndarray, chi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Detector point (x, y), pixels, hit by the ray of equivalent radius and azimuth chi.

    The ray u = (sin 2theta cos chi, sin 2theta sin chi, cos 2theta) meets the plane
    n . P = n . D at t = (n . D) / (n . u); rays that miss it go to infinity (NaN here).
    """
    two_theta = np.arctan(
        np.asarray(radius, dtype=np.float64) * geometry.pixel_size / geometry.distance
    )
    chi = np.asarray(chi, dtype=np.float64)
    u = np.stack(
        [np.sin(two_theta) * np.cos(chi), np.sin(two_theta) * np.sin(chi), np.cos(two_theta)],
        axis=-1,
    )
    rot = tilt.rotation()
    normal = rot[:, 2]
    along = u @ normal
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(along > 1e-9, geometry.distance * normal[2] / along, np.nan)
    offset = t[..., None] * u - np.array([0.0, 0.0, geometry.distance])
    cx, cy = geometry.beam_center
    s = geometry.pixel_size
    return cx + (offset @ rot[:, 0]) / s, cy + (offset @ rot[:, 1]) / s


def largest_two_theta(geometry: Geometry, tilt: Tilt) -> float:
    """The largest 2 theta (radians) on the frame: at a corner, as the angle from the beam
    is quasi-convex over a plane that the cone of 2 theta < 90 degrees cuts in ellipses."""
    rows, cols = geometry.shape
    x = np.array([-0.5, cols - 0.5, -0.5, cols - 0.5])
    y = np.array([-0.5, -0.5, rows - 0.5, rows - 0.5])
    return float(pixel_angles(geometry, tilt, x, y)[0].max())


def draw_tilt(geometry: Geometry, rng: np.random.Generator) -> Tilt | None:
    """A WAXS tilt: tau 5-40 degrees about an axis at any angle, reduced (x 0.7, up to 6
    times) until the frame stays within MAX_TWO_THETA; None if even the smallest does not."""
    angle, axis = np.radians(rng.uniform(5.0, 40.0)), float(rng.uniform(-np.pi, np.pi))
    for _ in range(7):
        tilt = Tilt(float(angle), axis)
        if largest_two_theta(geometry, tilt) <= MAX_TWO_THETA:
            return tilt
        angle *= 0.7
    return None
