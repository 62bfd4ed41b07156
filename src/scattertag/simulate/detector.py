"""Detector masks: Pilatus-like module gaps and dead pixels (True = valid)."""

from __future__ import annotations

import numpy as np

#: Pilatus module: 487 x 195 active pixels, gaps of 7 pixels between modules in a row
#: and 17 pixels between rows of modules (pixels of 172 um).
MODULE_COLS, MODULE_ROWS, GAP_COLS, GAP_ROWS = 487, 195, 7, 17


def _gap_lines(length: int, module: float, gap: float, offset: float) -> np.ndarray:
    """(length,) bool, False on the gaps of a periodic module + gap pattern from ``offset``."""
    period = module + gap
    phase = (np.arange(length) + 0.5 - offset) % period
    return phase < module


def module_gap_mask(
    shape: tuple[int, int], modules_across: int, offset: tuple[float, float]
) -> np.ndarray:
    """(rows, cols) bool mask of a Pilatus-like detector with ``modules_across`` modules per row.

    Module and gap sizes keep Pilatus proportions, scaled so that ``modules_across``
    modules span the frame width; ``offset`` (x, y) in pixels shifts the module grid.
    """
    rows, cols = shape
    scale = cols / (modules_across * MODULE_COLS + (modules_across - 1) * GAP_COLS)
    gap_x, gap_y = max(GAP_COLS * scale, 1.0), max(GAP_ROWS * scale, 1.0)
    good_cols = _gap_lines(cols, MODULE_COLS * scale, gap_x, offset[0])
    good_rows = _gap_lines(rows, MODULE_ROWS * scale, gap_y, offset[1])
    return good_rows[:, None] & good_cols[None, :]


def draw_mask(
    shape: tuple[int, int], rng: np.random.Generator, with_gaps: bool
) -> tuple[np.ndarray, dict]:
    """A detector mask for one experiment and its parameters: optional gaps plus dead pixels."""
    rows, cols = shape
    params: dict = {"module_gaps": bool(with_gaps)}
    if with_gaps:
        across = int(rng.choice([2, 3, 5]))
        offset = (
            float(rng.uniform(0, cols / across / 2)),
            float(rng.uniform(0, rows / across / 2)),
        )
        mask = module_gap_mask(shape, across, offset)
        params.update(modules_across=across, module_offset=list(offset))
    else:
        mask = np.ones(shape, dtype=bool)
    dead = dead_pixels(shape, rng)
    mask.reshape(-1)[dead] = False
    params["dead_pixels"] = len(dead)
    return mask, params


def dead_pixels(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Flat indices of a few dead pixels, as on any real detector (about 1e-5 of them)."""
    rows, cols = shape
    n_dead = int(rng.poisson(1e-5 * rows * cols))
    return rng.integers(0, rows * cols, size=n_dead)


def sensitivity_params(rng: np.random.Generator) -> dict:
    """A detector's flat field: smooth gradient 2-20 %, module gains 0-5 %, pixels 0.5-3 %."""
    return {
        "gradient": float(rng.uniform(0.02, 0.2)),
        "angle": float(rng.uniform(0, 2 * np.pi)),
        "module_sigma": float(rng.uniform(0.0, 0.05)),
        "pixel_sigma": float(rng.uniform(0.005, 0.03)),
        "seed": int(rng.integers(2**62)),
    }


def sensitivity_map(
    shape: tuple[int, int], p: dict, module: tuple[float, float, int, int] | None
) -> np.ndarray:
    """(rows*cols,) float64 relative sensitivity (mean about 1), multiplying expected counts.

    1 + gradient x (linear ramp across the frame along ``angle``, -1/2 to 1/2), times a
    gain per module (``module``: module period in frame pixels, rows and cols, and the
    frame row and col where the first module starts), times independent per-pixel gains
    (photo-response non-uniformity).
    """
    rows, cols = shape
    rng = np.random.default_rng(p["seed"])
    y = (np.arange(rows) / max(rows - 1, 1) - 0.5)[:, None]
    x = (np.arange(cols) / max(cols - 1, 1) - 0.5)[None, :]
    field = 1.0 + p["gradient"] * (np.cos(p["angle"]) * x + np.sin(p["angle"]) * y)
    if module is not None:
        period_r, period_c, r0, c0 = module
        grid = (
            ((np.arange(rows) - r0) // period_r - (-r0 // period_r)).astype(int)[:, None],
            ((np.arange(cols) - c0) // period_c - (-c0 // period_c)).astype(int)[None, :],
        )
        gains = 1.0 + p["module_sigma"] * rng.standard_normal(
            (int(grid[0].max()) + 1, int(grid[1].max()) + 1)
        )
        field = field * gains[grid]
    field = field * (1.0 + p["pixel_sigma"] * rng.standard_normal((rows, cols)))
    return np.clip(field, 0.0, None).ravel()
