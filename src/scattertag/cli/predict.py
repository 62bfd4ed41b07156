"""``scattertag predict``: tag detector files, a manifest, or a folder as it fills.

    scattertag predict FILES_OR_FOLDERS... [--beam-center X Y] [--mask FILE] [--out predictions.csv]
    scattertag predict --manifest files.csv --out predictions.csv
    scattertag predict --watch DIR --beam-center X Y --out predictions.csv

Exit status: 0 when every row was tagged, 1 when some rows failed (their ``error`` column
says why), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import sys

from scattertag.adapt.provenance import parse_thresholds
from scattertag.cli import OK, SOME_FAILED, add_symmetries_argument
from scattertag.errors import UserError
from scattertag.geometry import (
    REFERENCE_DISTANCE,
    REFERENCE_ENERGY,
    REFERENCE_PIXEL_SIZE,
    GeometryOptions,
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``predict`` arguments."""
    parser.add_argument(
        "files", nargs="*", help="detector files; 'file.h5::/path' names an HDF5 dataset"
    )
    parser.add_argument(
        "--manifest",
        help="CSV with columns path, beam_x, beam_y "
        "[, mask, frame, pixel_size_um, distance_m, energy_kev]",
    )
    parser.add_argument(
        "--watch",
        metavar="DIR",
        help="tag detector files as they appear in DIR (an Eiger master once), until interrupted",
    )
    add_geometry_arguments(parser)
    parser.add_argument(
        "--frame", type=int, help="tag only this frame (0-based) of multi-frame files"
    )
    parser.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="TAG=VALUE",
        help="call TAG at this probability instead of the model's threshold (repeatable); "
        "the CSV's model column and OUT.json record the model and every threshold",
    )
    parser.add_argument(
        "--model", help="model folder (model.safetensors + model.json); default: the shipped tagger"
    )
    parser.add_argument(
        "--out", default="predictions.csv", help="output CSV (default: %(default)s)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="reading/preprocessing processes, 0 = none (default: one per usable core)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="seconds one file (or frame) may take to be read and prepared in a worker process "
        "before it gets an error row and the worker is replaced (default: 600); needs "
        "--workers >= 1: with --workers 0 a reader stuck in a C library cannot be stopped",
    )
    parser.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="tag on a Dask cluster: scheduler address (tcp://host:8786) or 'local'",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda", "auto"),
        help="where the network runs (default: %(default)s; auto: cuda when available)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=16, help="frames per network batch (default: %(default)s)"
    )
    add_symmetries_argument(parser)
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="--watch: seconds between folder scans (default: %(default)s)",
    )
    parser.add_argument(
        "--recursive", action="store_true", help="a folder in FILES: its subfolders' files too"
    )
    parser.add_argument(
        "--no-series",
        dest="series",
        action="store_false",
        help="take each frame's beam centre from its own image alone; by default frames of "
        "one folder, shape and geometry options settle their centres together (a calibrant's "
        "detector pose, the centre they agree on): give this when a folder mixes set-ups",
    )
    parser.add_argument(
        "--tiled-api-key",
        default=None,
        help="API key of the Tiled server when FILES are tiled+http://... nodes "
        "(default: $TILED_API_KEY)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_geometry_arguments(parser: argparse.ArgumentParser) -> None:
    """Beam centre or PONI file, detector values and mask (shared with ``scattertag show``)."""
    geometry = parser.add_mutually_exclusive_group()
    geometry.add_argument(
        "--beam-center",
        nargs=2,
        type=float,
        metavar=("X", "Y"),
        help="beam centre in pixels: X = column, Y = row",
    )
    geometry.add_argument("--poni", help="pyFAI PONI file with the geometry")
    parser.add_argument("--mask", help="mask image, nonzero = excluded pixel (pyFAI convention)")
    scale = (
        "; only q-view models (image_space qcake) use it: with all three known their image view "
        "is in q, else in frame units; the shipped tagger is in frame units and ignores it "
        "(predict warns)"
    )
    parser.add_argument(
        "--pixel-size-um",
        type=float,
        help=f"pixel size, micrometres (default: the file's, else {REFERENCE_PIXEL_SIZE * 1e6:g})"
        + scale,
    )
    parser.add_argument(
        "--distance-m",
        type=float,
        help=f"sample-detector distance, m (default: the file's, else {REFERENCE_DISTANCE:g})"
        + scale,
    )
    parser.add_argument(
        "--energy-kev",
        type=float,
        help=f"photon energy in keV (default: the file's, else {REFERENCE_ENERGY:g})" + scale,
    )
    parser.add_argument(
        "--dummy", type=float, help="pixels holding this value are invalid (pyFAI's dummy)"
    )
    parser.add_argument(
        "--delta-dummy",
        type=float,
        help="with --dummy: pixels within this of the dummy value are invalid too",
    )


def geometry_options(args: argparse.Namespace) -> GeometryOptions:
    """The one conversion of the geometry arguments (and ``--frame``) from text."""
    return GeometryOptions.from_user(
        args.beam_center,
        args.poni,
        args.mask,
        args.pixel_size_um,
        args.distance_m,
        args.energy_kev,
        frame=getattr(args, "frame", None),
        dummy=args.dummy,
        delta_dummy=args.delta_dummy,
    )


def run(args: argparse.Namespace) -> int:
    """Tag, write the CSV, print a summary; 0 all tagged, 1 some rows failed."""
    if args.watch:
        from scattertag.prediction.watch import watch

        if args.files or args.manifest:
            raise UserError("--watch takes no FILES or --manifest")
        if args.dask:
            raise UserError("--watch runs on this machine; --dask is for FILES or --manifest")
        return watch(
            args.watch,
            args.out,
            options=geometry_options(args),
            model=args.model,
            workers=args.workers,
            batch_size=args.batch_size,
            interval=args.interval,
            device=args.device,
            thresholds=parse_thresholds(args.threshold),
            timeout=args.timeout,
            symmetries=args.symmetries,
            series=args.series,
        )
    from scattertag.prediction.api import predict
    from scattertag.serve.tiled import is_tiled

    if any(is_tiled(f) for f in args.files):
        table = predict_tiled_nodes(args)
    else:
        table = predict(
            args.files,
            manifest=args.manifest,
            options=geometry_options(args),
            recursive=args.recursive,
            model=args.model,
            workers=args.workers,
            batch_size=args.batch_size,
            out=args.out,
            progress=not args.quiet,
            device=args.device,
            dask=args.dask,
            thresholds=parse_thresholds(args.threshold),
            timeout=args.timeout,
            symmetries=args.symmetries,
            series=args.series,
        )
    failed = table.failed
    print(f"{len(table) - len(failed)} of {len(table)} frames tagged -> {args.out}")
    for row in failed[:10]:
        print(f"  failed: {row['error']}", file=sys.stderr)
    if len(failed) > 10:
        print(f"  ... and {len(failed) - 10} more (see the error column)", file=sys.stderr)
    return SOME_FAILED if failed else OK


def predict_tiled_nodes(args: argparse.Namespace):
    """The table of the Tiled nodes named as FILES (tags written back where allowed)."""
    import os

    from scattertag.prediction.table import Table
    from scattertag.serve.tiled import is_tiled, predict_tiled

    if args.manifest or args.dask or args.timeout or not all(is_tiled(f) for f in args.files):
        raise UserError(
            "Tiled nodes (tiled+http://...) are tagged alone: no local files, "
            "--manifest, --dask or --timeout with them"
        )
    key = args.tiled_api_key or os.environ.get("TILED_API_KEY")
    tables = [
        predict_tiled(
            uri,
            api_key=key,
            options=geometry_options(args),
            model=args.model,
            workers=args.workers,
            batch_size=args.batch_size,
            device=args.device,
            thresholds=parse_thresholds(args.threshold),
            symmetries=args.symmetries,
        )
        for uri in args.files
    ]
    table = Table(tables[0].vocabulary, [r for t in tables for r in t.rows], tables[0].provenance)
    table.to_csv(args.out)
    return table
