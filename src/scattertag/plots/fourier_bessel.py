"""Frames, their Fourier-Bessel coefficients and reconstructions (``scattertag fb``).

One row per frame: the frame as the features see it (padded, block-averaged, log-scaled;
masked pixels grey), the coefficient magnitudes |a_nk| (orders down, zeros across, log
colour), the reconstruction sum a psi over the disk, and the image view's cake (mean
log counts on azimuth x log radius, the network's image input). Frames come from detector files,
read by the same readers as ``scattertag predict`` (TIFF, CBF, EDF, HDF5, .npy; negative
pixels are gaps), or from the simulator (``--simulated N``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from scattertag.errors import UserError
from scattertag.features.views import ViewMaker, ViewSpec
from scattertag.geometry import Geometry, GeometryOptions
from scattertag.plotting import caption, draw_cake, draw_frame, montage_axes, save


@dataclass(frozen=True)
class FbConfig:
    """Frames to draw: detector files ``images`` and ``simulated`` simulator frames.

    File frames use ``options`` (beam centre, detector, mask: as for predict; without a
    beam centre the frame centre of the reference detector); simulated frames have ``size``
    pixels and ``seed``. ``orders`` N and ``zeros`` K set the Fourier-Bessel basis.
    """

    images: tuple[Path, ...] = ()
    out: Path = Path("fb.png")
    options: GeometryOptions = field(default_factory=GeometryOptions)
    simulated: int = 0
    size: int = 1000
    seed: int = 0
    orders: int = ViewSpec.orders
    zeros: int = ViewSpec.zeros

    def __post_init__(self) -> None:
        """UserError when there is nothing to draw."""
        if not self.images and self.simulated < 1:
            raise UserError("give at least one IMAGE or --simulated N (N >= 1)")


def read_frame(path: Path, options: GeometryOptions) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``options.frame`` (default 0) of a detector file and its valid pixels."""
    from scattertag.io.masks import mask_valid, valid_pixels
    from scattertag.io.readers import ReadError, read_frames

    try:
        frame = next(read_frames(path, options.frame or 0))
        extra = mask_valid(options.mask)  # type: ignore[arg-type]
    except ReadError as exc:  # the message names the file and the problem
        raise UserError(str(exc)) from exc
    return frame.counts, valid_pixels(frame.counts, frame.valid, extra)


def frame_geometry(options: GeometryOptions, shape: tuple[int, int]) -> Geometry:
    """Geometry of a file frame from ``options``; without a beam centre, the frame centre."""
    if not options.has_beam_center:
        rows, cols = shape
        options = replace(options, beam_center=((cols - 1) / 2, (rows - 1) / 2))
    return options.resolve(shape)[0]


def frames(config: FbConfig) -> Iterator[tuple[str, np.ndarray, np.ndarray | None, Geometry]]:
    """Yield (title, counts, mask, geometry) for every requested frame."""
    for path in config.images:
        counts, valid = read_frame(path, config.options)
        yield path.name, counts, valid, frame_geometry(config.options, counts.shape)
    if config.simulated:
        from scattertag.simulate import Recipe, draw_experiment, simulate_image

        recipe = Recipe(size=config.size)
        for e in range(config.simulated):
            s = simulate_image(draw_experiment(recipe, config.seed, e), 0)
            yield f"simulated {e}: " + caption(s.tags, 60), s.counts, s.mask, s.geometry


def draw_row(
    axes,
    title: str,
    counts: np.ndarray,
    mask: np.ndarray | None,
    geometry: Geometry,
    spec: ViewSpec,
) -> None:
    """Frame, |a_nk|, reconstruction and cake of one frame on four axes."""
    maker = ViewMaker(spec, geometry, mask)
    cake = maker.image(counts, mask)[0]
    frame, valid, a = maker.fourier_bessel(counts, mask)
    back = maker.fb.reconstruct(a)
    to_counts = lambda v: np.expm1(np.clip(v, 0, None) * math.log1p(spec.max_counts))  # noqa: E731
    center = maker.work_center
    draw_frame(
        axes[0],
        to_counts(frame),
        valid,
        center,
        title=f"{title}\n(features' view, R = {maker.radius:.0f} px)",
    )
    mag = np.log10(np.abs(a) / (math.sqrt(math.pi) * maker.radius) + 1e-6)
    im = axes[1].imshow(mag, cmap="viridis", aspect="auto", interpolation="nearest")
    axes[1].set_xlabel("zero k", fontsize=7)
    axes[1].set_ylabel("order n", fontsize=7)
    axes[1].set_title("log10 |a_nk| / (sqrt(pi) R)", fontsize=7)
    axes[1].figure.colorbar(im, ax=axes[1], fraction=0.046)
    draw_frame(
        axes[2],
        to_counts(back),
        None,
        center,
        title=f"reconstruction, N = {spec.orders}, K = {spec.zeros}",
    )
    side = max(geometry.shape)
    r_lo, r_hi = spec.cake_r_min * side, spec.cake_r_max * side
    draw_cake(axes[3], cake, r_lo, r_hi, title="cake: the image view")


def fb_figure(config: FbConfig) -> Path:
    """Draw every frame with its coefficients, reconstruction and cake into ``config.out``."""
    spec = ViewSpec(orders=config.orders, zeros=config.zeros, image_space="cake")
    rows = list(frames(config))
    fig, axes = montage_axes(4 * len(rows), columns=4)
    for i, row in enumerate(rows):
        draw_row(axes[4 * i : 4 * i + 4], *row, spec)
    return save(fig, config.out)
