"""``scattertag build``: arguments -> :class:`~scattertag.data.build.BuildConfig` -> a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from scattertag.cli import OK, config_from, default
from scattertag.data.build import BuildConfig, build
from scattertag.data.manifest import NUM_SHARDS


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scattertag build``."""
    parser.add_argument(
        "--out", required=True, type=Path, help="dataset directory (created; resumed if present)"
    )
    size, experiments = default(BuildConfig, "size"), default(BuildConfig, "experiments")
    images = default(BuildConfig, "images_per_experiment")
    parser.add_argument(
        "--size", type=int, default=size, help=f"detector frame size in pixels (default {size})"
    )
    parser.add_argument(
        "--experiments",
        type=int,
        default=experiments,
        help=f"experiments, >= {NUM_SHARDS} (default {experiments})",
    )
    parser.add_argument(
        "--images-per-experiment",
        type=int,
        default=images,
        help=f"images per experiment (default {images})",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: all cores)"
    )
    parser.add_argument(
        "--dask",
        metavar="ADDRESS",
        default=None,
        help="run on a Dask scheduler at ADDRESS (e.g. tcp://host:8786), "
        "or 'local' for a LocalCluster",
    )
    parser.add_argument(
        "--detectors",
        choices=("catalogue", "reference"),
        default=default(BuildConfig, "detectors"),
        help="catalogue: real detectors, SAXS and WAXS setups (default); reference: the "
        "first simulator's single detector (the shipped tagger's training data)",
    )
    parser.add_argument(
        "--input-size",
        type=int,
        default=default(BuildConfig, "input_size"),
        help="network input image size S (default %(default)s)",
    )
    parser.add_argument(
        "--image-space",
        choices=("detector", "cake", "qcake"),
        default=None,
        help="image view: the frame's azimuth x log-radius cake (default), the azimuth x log-q "
        "cake over a fixed q window (qcake; a quarter of the frames in frame units, as if the "
        "geometry were unknown; docs/qviews.md) or the downsampled frame (detector)",
    )
    parser.add_argument(
        "--cake-texture",
        type=int,
        default=0,
        metavar="M",
        help="add a last cake channel, the texture inside each cell from M = 3-16 azimuthal "
        "sub-cells (grainy powder rings; docs/results.md); 0: none (default)",
    )
    parser.add_argument(
        "--orders", type=int, default=None, help="Fourier-Bessel orders N (default: ViewSpec's)"
    )
    parser.add_argument(
        "--zeros", type=int, default=None, help="Fourier-Bessel zeros K (default: ViewSpec's)"
    )
    parser.add_argument(
        "--keep-raw",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also store the raw uint32 frames, bitshuffle-LZ4 compressed (default: no)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Build the dataset and print a one-line summary."""
    manifest = build(config_from(BuildConfig, args, progress=not args.quiet))
    size = sum(s.bytes for s in manifest.shards if s is not None)
    print(f"{args.out}: {manifest.images} images in {NUM_SHARDS} shards, {size / 1e6:.1f} MB")
    return OK
