"""``scattertag fb``: arguments -> :class:`~scattertag.plots.fourier_bessel.FbConfig` -> PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from scattertag.cli import OK
from scattertag.cli.predict import add_geometry_arguments, geometry_options
from scattertag.features.views import ViewSpec
from scattertag.plots.fourier_bessel import FbConfig, fb_figure


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scattertag fb``."""
    parser.add_argument(
        "images",
        nargs="*",
        type=Path,
        metavar="IMAGE",
        help="detector files (TIFF, CBF, EDF, HDF5 file.h5::/path, .npy)",
    )
    add_geometry_arguments(parser)
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


def run(args: argparse.Namespace) -> int:
    """Draw the figure and say where it went."""
    config = FbConfig(
        images=tuple(args.images),
        out=args.out,
        options=geometry_options(args),
        simulated=args.simulated,
        size=args.size,
        seed=args.seed,
        orders=args.orders,
        zeros=args.zeros,
    )
    print(f"wrote {fb_figure(config)}")
    return OK
