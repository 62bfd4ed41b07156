"""``scattertag fb``: frames, their Fourier-Bessel coefficients and reconstructions.

One row per frame: the frame as the features see it (padded, block-averaged, log-scaled;
masked pixels grey), the coefficient magnitudes |a_nk| (orders down, zeros across, log
colour), the reconstruction sum a psi over the disk, and the image view's cake (mean
log counts on azimuth x log radius, the network's image input). Frames come from detector files,
read by the same readers as ``scattertag predict`` (TIFF, CBF, EDF, HDF5, .npy; negative
pixels are gaps), or from the simulator (``--simulated N``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from scattertag.features.views import ViewMaker, ViewSpec
from scattertag.geometry import Geometry
from scattertag.plotting import caption, draw_cake, draw_frame, montage_axes, save


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of the fb subcommand."""
    parser.add_argument(
        "images",
        nargs="*",
        type=Path,
        metavar="IMAGE",
        help="detector files (TIFF, CBF, EDF, HDF5 file.h5::/path, .npy)",
    )
    parser.add_argument(
        "--beam-center",
        nargs=2,
        type=float,
        metavar=("X", "Y"),
        help="beam centre in pixels (x = column); default: frame centre",
    )
    parser.add_argument("--poni", type=Path, help="pyFAI PONI file giving the beam centre")
    parser.add_argument(
        "--simulated", type=int, default=0, metavar="N", help="also draw N simulated images"
    )
    parser.add_argument(
        "--size", type=int, default=1000, help="frame side of simulated images (default 1000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of simulated images (default 0)")
    parser.add_argument(
        "--orders", type=int, default=ViewSpec.orders, help="FB orders N (default %(default)s)"
    )
    parser.add_argument(
        "--zeros", type=int, default=ViewSpec.zeros, help="FB zeros K (default %(default)s)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("fb.png"), help="output PNG (default fb.png)"
    )


def read_frame(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """First frame of a detector file and its own valid-pixel mask (the prediction readers)."""
    from scattertag.io.readers import ReadError, read_frames

    try:
        frame = next(read_frames(path, 0))
    except ReadError as exc:  # the message names the file and the problem
        raise SystemExit(f"fb: {exc}") from exc
    return frame.counts, frame.valid


def frame_geometry(args: argparse.Namespace, shape: tuple[int, int]) -> Geometry:
    """Geometry of a file frame from --poni, --beam-center or the frame centre."""
    if args.poni is not None:
        return Geometry.from_poni(args.poni, shape=shape)
    rows, cols = shape
    center = tuple(args.beam_center) if args.beam_center else ((cols - 1) / 2, (rows - 1) / 2)
    return Geometry(shape, center)


def frames(args: argparse.Namespace):
    """Yield (title, counts, mask, geometry) for every requested frame."""
    for path in args.images:
        counts, valid = read_frame(path)
        yield path.name, counts, valid, frame_geometry(args, counts.shape)
    if args.simulated:
        from scattertag.simulate import Recipe, draw_experiment, simulate_image

        recipe = Recipe(size=args.size)
        for e in range(args.simulated):
            s = simulate_image(draw_experiment(recipe, args.seed, e), 0)
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
    center = maker.work_geometry.beam_center
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


def run(args: argparse.Namespace) -> int:
    """Draw every frame with its coefficients and reconstruction into ``args.out``."""
    if not args.images and args.simulated < 1:
        raise SystemExit("fb: give at least one IMAGE or --simulated N (N >= 1)")
    if args.poni is not None and args.beam_center:
        raise SystemExit("fb: give either --poni or --beam-center, not both")
    spec = ViewSpec(orders=args.orders, zeros=args.zeros, image_space="cake")
    rows = list(frames(args))
    fig, axes = montage_axes(4 * len(rows), columns=4)
    for i, row in enumerate(rows):
        draw_row(axes[4 * i : 4 * i + 4], *row, spec)
    print(f"wrote {save(fig, args.out)}")
    return 0
