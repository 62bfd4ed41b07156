"""Grazing-incidence (GISAXS) features: horizon, Yoneda band, specular rod, Bragg rods.

The beam meets a film at the incidence angle alpha_i; the detector's vertical axis is the
exit angle alpha_f, measured up from the sample horizon (rows decrease upward). Below the
horizon (alpha_f < 0) the film shadows the scattering; at alpha_f = alpha_c (critical
angle) the transmission function peaks (Yoneda band); the specular reflection sits at
alpha_f = alpha_i on the specular rod (qy = 0); a lateral lattice of period 2 pi / q1
makes Bragg rods at qy = q1 x ratio, vertical lines on the detector.
"""

from __future__ import annotations

import numpy as np

from scattertag.geometry import Geometry
from scattertag.simulate.lattices import reflections


def draw_incidence(rng: np.random.Generator) -> dict:
    """Experiment-level incidence and critical angles (degrees)."""
    return {
        "alpha_i_deg": float(rng.uniform(0.08, 0.4)),
        "alpha_c_deg": float(rng.uniform(0.1, 0.25)),
    }


def row_at_exit_angle(
    geometry: Geometry, incidence: dict, alpha_f_deg: float | np.ndarray
) -> float | np.ndarray:
    """Detector row (pixels) of exit angle alpha_f: 2 theta_vertical = alpha_i + alpha_f."""
    total = np.radians(incidence["alpha_i_deg"] + np.asarray(alpha_f_deg))
    return geometry.beam_center[1] - geometry.distance * np.tan(total) / geometry.pixel_size


def exit_angle(geometry: Geometry, incidence: dict) -> np.ndarray:
    """(rows,) exit angle alpha_f (degrees) of each detector row."""
    rows = np.arange(geometry.shape[0], dtype=np.float64)
    total = np.degrees(
        np.arctan((geometry.beam_center[1] - rows) * geometry.pixel_size / geometry.distance)
    )
    return total - incidence["alpha_i_deg"]


def above_horizon(geometry: Geometry, incidence: dict) -> np.ndarray:
    """(rows, cols) bool: rows at positive exit angle (the film does not shadow them)."""
    return np.broadcast_to((exit_angle(geometry, incidence) > 0)[:, None], geometry.shape)


def vertical_factor(
    geometry: Geometry, incidence: dict, yoneda: float
) -> tuple[np.ndarray, np.ndarray]:
    """(rows,) film shadow (0 below the horizon) and (rows,) Yoneda enhancement.

    The scattering is multiplied by shadow * (1 + yoneda_band): a Gaussian band of
    relative strength ``yoneda`` at alpha_f = alpha_c, width alpha_c / 3.
    """
    af = exit_angle(geometry, incidence)
    step = np.degrees(geometry.pixel_size / geometry.distance)  # degrees per row
    shadow = 0.5 * (1.0 + np.tanh(af / step))
    band = yoneda * np.exp(
        -0.5 * ((af - incidence["alpha_c_deg"]) / (incidence["alpha_c_deg"] / 3.0)) ** 2
    )
    return shadow, band


def rod(
    geometry: Geometry, column: float, sigma: float, incidence: dict, decay_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices and unit values of a vertical rod at ``column`` above the horizon.

    Gaussian across (sigma pixels), exp(-alpha_f / decay) along (the film's form factor).
    """
    _rows, cols = geometry.shape
    h = int(np.ceil(4 * sigma))
    cs = np.arange(max(round(column) - h, 0), min(round(column) + h + 1, cols))
    af = exit_angle(geometry, incidence)
    rs = np.flatnonzero(af > 0)
    if len(cs) == 0 or len(rs) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    values = (
        np.exp(-af[rs] / decay_deg)[:, None] * np.exp(-0.5 * ((cs - column) / sigma) ** 2)[None, :]
    )
    return (rs[:, None] * cols + cs[None, :]).ravel(), values.ravel()


def bragg_rod_columns(
    geometry: Geometry, q1: float, lattice: str, count: int = 6
) -> tuple[np.ndarray, np.ndarray]:
    """Columns (both sides of the beam) and multiplicities of the Bragg rods at qy = q1 x ratio."""
    ratios, mult = reflections(lattice, count)
    keep = q1 * ratios < 0.99 * 4 * np.pi / geometry.wavelength  # within the Ewald sphere
    ratios, mult = ratios[keep], mult[keep]
    r = np.asarray(geometry.radius_of_q(q1 * ratios))
    cx = geometry.beam_center[0]
    return np.concatenate([cx - r, cx + r]), np.concatenate([mult, mult])
