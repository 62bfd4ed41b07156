"""Shared pictures: false-colour log-scaled detector images and montages.

Every PNG that shows a detector frame (preview, fb, inspect, show) draws it with
:func:`draw_frame`, so all of them look alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from scattertag.io.files import atomic_path

#: Colour map of the field's false-colour images.
CMAP = "inferno"


def log_display(counts: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """log10(1 + counts) as float32, NaN where ``mask`` is False (shown as grey)."""
    img = np.log10(1.0 + np.clip(np.asarray(counts, dtype=np.float32), 0, None))
    if mask is not None:
        img = np.where(mask, img, np.nan)
    return img


def draw_frame(
    ax: Axes,
    counts: np.ndarray,
    mask: np.ndarray | None = None,
    beam_center: tuple[float, float] | None = None,
    title: str | None = None,
    max_pixels: int = 512,
) -> None:
    """Draw one frame on ``ax``: log colour scale, masked pixels grey, beam centre marked.

    Large frames are shown block-subsampled to at most ``max_pixels`` a side.
    """
    step = max(1, int(np.ceil(max(counts.shape) / max_pixels)))
    img = log_display(counts[::step, ::step], None if mask is None else mask[::step, ::step])
    cmap = matplotlib.colormaps[CMAP].with_extremes(bad="0.6")
    rows, cols = counts.shape
    ax.imshow(
        img,
        cmap=cmap,
        origin="upper",
        extent=(-0.5, cols - 0.5, rows - 0.5, -0.5),
        interpolation="nearest",
    )
    if beam_center is not None:
        cx, cy = beam_center
        on = -0.5 <= cx < cols - 0.5 and -0.5 <= cy < rows - 0.5
        # an off-frame beam centre is drawn at the frame edge, pointing the way
        px, py = float(np.clip(cx, 0, cols - 1)), float(np.clip(cy, 0, rows - 1))
        ax.plot(px, py, marker="+" if on else "x", color="cyan", ms=10, mew=2)
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7, wrap=True)


def draw_cake(
    ax: Axes, cake: np.ndarray, r_min: float, r_max: float, title: str | None = None
) -> None:
    """Draw a cake (azimuth rows, -180 to 180 degrees, x log-radius columns, ``r_min`` to
    ``r_max`` pixels) on ``ax``: azimuth up, log10 radius along x."""
    ax.imshow(
        cake,
        cmap="magma",
        aspect="auto",
        interpolation="nearest",
        origin="lower",
        extent=(np.log10(r_min), np.log10(r_max), -180, 180),
    )
    ax.set_xlabel("log10 radius (pixels)", fontsize=7)
    ax.set_ylabel("azimuth (degrees)", fontsize=7)
    if title:
        ax.set_title(title, fontsize=7)


def new_figure(**kwargs: object) -> Figure:
    """A matplotlib Figure not attached to pyplot: no GUI backend, nothing to close."""
    return Figure(**kwargs)  # type: ignore[arg-type]


def montage_axes(count: int, columns: int = 4, panel: float = 3.2) -> tuple[Figure, list[Axes]]:
    """A figure with ``count`` square panels in rows of ``columns``; spare panels hidden."""
    columns = max(1, min(columns, count))
    rows = int(np.ceil(count / columns))
    # extra height above each row leaves room for captions of up to five lines
    fig = new_figure(figsize=(panel * columns, 1.15 * panel * rows + 0.4))
    axes = fig.subplots(rows, columns, squeeze=False)
    fig.subplots_adjust(hspace=0.3, wspace=0.08)
    flat = list(axes.ravel())
    for ax in flat[count:]:
        ax.axis("off")
    return fig, flat[:count]


def caption(tags: Sequence[str], width: int = 40) -> str:
    """Tags joined by ', ' and wrapped to lines of about ``width`` characters."""
    lines, line = [], ""
    for tag in tags or ["(no tags)"]:
        piece = tag if not line else line + ", " + tag
        if len(piece) > width and line:
            lines.append(line + ",")
            line = tag
        else:
            line = piece
    lines.append(line)
    return "\n".join(lines)


def save(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG atomically (temporary name, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return path
