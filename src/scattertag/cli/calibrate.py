"""``scattertag calibrate``: arguments -> :func:`~scattertag.adapt.calibrate.calibrate_on_dataset`.

See :mod:`scattertag.adapt.calibrate` for what is fitted and written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scattertag.adapt.calibrate import THRESHOLDS, calibrate_on_dataset, format_calibration
from scattertag.adapt.calibration import METHODS
from scattertag.cli import OK


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scattertag calibrate``."""
    parser.add_argument("--model", help="model folder (default: the shipped tagger)")
    parser.add_argument(
        "--data",
        required=True,
        nargs="+",
        metavar="DIR",
        help="dataset directory (scattertag build); several (same views) are taken together",
    )
    parser.add_argument("--out", required=True, help="folder for the calibrated model")
    parser.add_argument(
        "--method", choices=list(METHODS), default="platt", help="(default: %(default)s)"
    )
    parser.add_argument(
        "--test-shards",
        type=int,
        nargs="+",
        default=[9],
        help="shards kept for scoring; the others are fitted on (default: 9)",
    )
    parser.add_argument(
        "--thresholds",
        choices=THRESHOLDS,
        default="tune",
        help="tune: F1-best on the fitting shards' calibrated probabilities; keep: the "
        "model's own thresholds mapped through the calibration, so no tag decision changes "
        "(default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Calibrate, print the table."""
    result = calibrate_on_dataset(
        args.model,
        args.data,
        args.out,
        args.method,
        tuple(args.test_shards),
        progress=not args.quiet,
        thresholds=args.thresholds,
    )
    print(format_calibration(result))
    print(f"wrote {Path(args.out)}: model.safetensors, model.json, calibrate.json, reliability.png")
    return OK
