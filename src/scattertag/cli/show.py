"""``scattertag show FILE``: one frame with its predicted tags; exit 1 if it cannot be tagged."""

from __future__ import annotations

import argparse
import sys

from scattertag.cli import OK, SOME_FAILED
from scattertag.cli.predict import add_geometry_arguments, geometry_options
from scattertag.plots.tagged_frame import NotTagged, show


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scattertag show``."""
    parser.add_argument("file", help="detector file; 'file.h5::/path' names an HDF5 dataset")
    add_geometry_arguments(parser)
    parser.add_argument(
        "--frame", type=int, default=0, help="frame of a multi-frame file (default: %(default)s)"
    )
    parser.add_argument("--model", help="model folder; default: the shipped tagger")
    parser.add_argument("--out", default="show.png", help="output PNG (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Draw the PNG; 1 if the file could not be tagged."""
    try:
        path = show(args.file, geometry_options(args), args.out, model=args.model)
    except NotTagged as exc:
        print(f"scattertag show: {exc}", file=sys.stderr)
        return SOME_FAILED
    print(f"wrote {path}")
    return OK
