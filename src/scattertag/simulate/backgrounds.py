"""Backgrounds (constant, structured, windowed) and defects (parasitic streaks, zingers,
saturation) of one image. Amplitudes in counts per reference pixel, as in scattering.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scattertag.simulate.experiment import Experiment
from scattertag.simulate.scattering import blur_pixels, gaussian_spots, loguniform
from scattertag.simulate.terms import Term


def _smooth_curve(rng: np.random.Generator, n: int, depth: float) -> np.ndarray:
    """(n,) positive smooth random curve 1 + depth * (sum of three low-frequency cosines) / 3."""
    x = np.linspace(0.0, 1.0, n)
    waves = sum(
        (
            np.cos(2 * np.pi * rng.uniform(0.3, 2.0) * x + rng.uniform(0, 2 * np.pi))
            for _ in range(3)
        ),
        np.zeros(n),
    )
    return 1.0 + depth * waves / 3.0


def draw_backgrounds(exp: Experiment, rng: np.random.Generator) -> list[Term]:
    """A constant background, and with recipe probabilities a structured and a windowed one."""
    rows, cols = exp.shape
    probability = exp.recipe.terms
    level = loguniform(rng, 0.05, 2000.0)
    terms = [
        Term(
            "background.constant",
            "background",
            {"level": level},
            radial=np.full(len(exp.r_grid), level * exp.intensity_scale),
            rule="diffuse",
        )
    ]
    if rng.random() < probability["structured background"]:
        p: dict[str, Any] = {
            "level": loguniform(rng, 0.1, 2000.0),
            "depth": float(rng.uniform(0.3, 0.9)),
        }
        field = np.outer(_smooth_curve(rng, rows, p["depth"]), _smooth_curve(rng, cols, p["depth"]))
        values = (p["level"] * exp.intensity_scale * field).ravel()
        terms.append(Term("background.structured", "background", p, values=values, rule="diffuse"))
    if rng.random() < probability["windowed background"]:
        shape = str(rng.choice(["square", "circle"]))
        p = {
            "shape": shape,
            "level": loguniform(rng, 0.5, 3000.0),
            "center": [float(rng.uniform(0.2, 0.8)) for _ in range(2)],
            "half_size": float(rng.uniform(0.15, 0.4)),
            "blur": float(rng.uniform(1.0, 4.0)),
        }
        cx, cy = p["center"][0] * cols, p["center"][1] * rows
        half = p["half_size"] * max(rows, cols)
        reach = half + 4 * p["blur"] * exp.scale  # only the window's bounding box is computed
        ys, xs = np.mgrid[
            max(int(cy - reach), 0) : min(int(cy + reach) + 2, rows),
            max(int(cx - reach), 0) : min(int(cx + reach) + 2, cols),
        ]
        if shape == "square":
            d = np.maximum(np.abs(xs - cx), np.abs(ys - cy)) - half
        else:
            d = np.hypot(xs - cx, ys - cy) - half
        inside = 0.5 * (1.0 - np.tanh(d / (p["blur"] * exp.scale))).ravel()
        keep = inside > 1e-3
        terms.append(
            Term(
                f"background.windowed: {shape}",
                "background",
                p,
                index=(ys * cols + xs).ravel()[keep],
                values=p["level"] * exp.intensity_scale * inside[keep],
                rule="diffuse",
            )
        )
    return terms


def _streak(exp: Experiment, p: dict, horizontal: bool) -> Term | None:
    """A parasitic slit streak through the beam centre, decaying as (1 + s / s0)^-p along it."""
    rows, cols = exp.shape
    cx, cy = exp.geometry.beam_center
    (c_across, n_across), (c_along, n_along) = (
        ((cy, rows), (cx, cols)) if horizontal else ((cx, cols), (cy, rows))
    )
    width = blur_pixels(exp, p["width"])
    lo, hi = (
        max(int(np.floor(c_across - 4 * width)), 0),
        min(int(np.ceil(c_across + 4 * width)) + 1, n_across),
    )
    if lo >= hi:
        return None
    across = np.arange(lo, hi)
    along = np.arange(n_along)
    profile = (
        np.exp(-0.5 * ((across - c_across) / width) ** 2)[:, None]
        * (1.0 + np.abs(along - c_along) / (p["length"] * exp.scale))[None, :] ** -p["exponent"]
    )
    if horizontal:
        index = (across[:, None] * cols + along[None, :]).ravel()
    else:
        index = (along[None, :] * cols + across[:, None]).ravel()
    values = p["amplitude"] * exp.intensity_scale * profile.ravel()
    return Term(
        f"defects.parasitic: {'horizontal' if horizontal else 'vertical'}",
        "defect",
        p,
        index=index,
        values=values,
    )


def draw_defects(exp: Experiment, rng: np.random.Generator) -> list[Term]:
    """Parasitic slit streaks, zingers and a saturating spot, each with its recipe probability."""
    rows, cols = exp.shape
    probability = exp.recipe.terms
    terms: list[Term] = []
    if rng.random() < probability["parasitic"]:
        directions = [[True], [False], [True, False]][int(rng.integers(3))]
        for horizontal in directions:
            p: dict[str, Any] = {
                "amplitude": loguniform(rng, 10.0, 1e4),
                "width": float(rng.uniform(0.7, 3.0)),
                "length": float(rng.uniform(5.0, 40.0)),
                "exponent": float(rng.uniform(1.0, 3.0)),
            }
            streak = _streak(exp, p, horizontal)
            if streak is not None:
                terms.append(streak)
    if rng.random() < probability["zingers"]:
        # cosmic rays hit single pixels: counts per pixel, not scaled with the pixel area
        n = int(rng.integers(1, 20))
        p = {"count": n, "amplitudes": [loguniform(rng, 1e2, 1e5) for _ in range(n)]}
        index, values = gaussian_spots(
            exp,
            rng.uniform(0, cols - 1, n),
            rng.uniform(0, rows - 1, n),
            0.5,
            np.array(p["amplitudes"]),
        )
        terms.append(
            Term(
                f"defects.zingers: {n}",
                "detector",
                p,
                index=index,
                values=values,
                unique=False,
                rule="spots",
            )
        )
    if rng.random() < probability["saturation"]:
        p = {
            "x": float(rng.uniform(0, cols - 1)),
            "y": float(rng.uniform(0, rows - 1)),
            "sigma": float(rng.uniform(1.0, 4.0)),
            "peak": loguniform(rng, 1e8, 1e10),
        }
        index, values = gaussian_spots(
            exp,
            np.array([p["x"]]),
            np.array([p["y"]]),
            blur_pixels(exp, p["sigma"]),
            np.array([p["peak"]]),
        )
        terms.append(
            Term(
                "defects.saturation: spot",
                "defect",
                p,
                index=index,
                values=values,
                unique=False,
                rule="spots",
            )
        )
    return terms
