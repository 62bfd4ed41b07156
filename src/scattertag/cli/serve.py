"""``scattertag serve``: the tagging service with its web page.

    scattertag serve --folder DIR --watch --beam-center X Y [--port 8000] [--api-key KEY]
    scattertag serve --tiled http://localhost:8000/api/v1/metadata/raw --poni det.poni

Binds 127.0.0.1 unless ``--host`` says otherwise. Open http://127.0.0.1:PORT/ for the page,
/docs for the API.
"""

from __future__ import annotations

import argparse
import sys

from scattertag.cli import OK, add_symmetries_argument
from scattertag.cli.predict import add_geometry_arguments
from scattertag.errors import UserError
from scattertag.geometry import GeometryOptions
from scattertag.serve.config import ServeConfig


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scattertag serve``."""
    parser.add_argument(
        "--folder",
        action="append",
        default=[],
        metavar="DIR",
        help="serve and tag files in DIR (repeatable)",
    )
    parser.add_argument(
        "--watch", action="store_true", help="keep tagging new files as they appear"
    )
    parser.add_argument(
        "--tiled",
        action="append",
        default=[],
        metavar="URI",
        help="tag the arrays of a Tiled node (repeatable)",
    )
    parser.add_argument(
        "--tiled-api-key", help="API key of the Tiled server (default: TILED_API_KEY)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    parser.add_argument(
        "--state",
        default="scattertag-serve",
        help="folder for the database, uploads and labels (default: %(default)s)",
    )
    parser.add_argument("--db", help="SQLite file (default: STATE/scattertag.sqlite)")
    parser.add_argument("--labels", help="labels TSV for corrections (default: STATE/labels.tsv)")
    add_geometry_arguments(parser)
    parser.add_argument("--model", help="model folder; default: the shipped tagger")
    parser.add_argument(
        "--api-key", help="key required for uploads and writes (default: SCATTERTAG_API_KEY)"
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=256,
        help="largest upload in MiB (default: %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="preparing processes (default: one per usable core); 0 = --threads threads",
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="preparing threads with --workers 0 (default: 2)"
    )
    parser.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="tag on a Dask cluster: scheduler address (tcp://host:8786) or 'local' (a "
        "LocalCluster of --workers processes, 0 = one per core); workers must see --state",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="most frames per network batch")
    add_symmetries_argument(parser)
    parser.add_argument(
        "--interval", type=float, default=1.0, help="seconds between folder scans (default: 1)"
    )


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """The ServeConfig of parsed arguments (ValueError on bad ones)."""
    options = GeometryOptions.from_user(
        args.beam_center, args.poni, None, args.pixel_size_um, args.distance_m, args.energy_kev
    )
    setup = options if options.has_beam_center else None
    return ServeConfig(
        folders=args.folder,
        watch=args.watch,
        tiled=args.tiled,
        tiled_api_key=args.tiled_api_key,
        host=args.host,
        port=args.port,
        state=args.state,
        db=args.db,
        labels=args.labels,
        setup=setup,
        mask=args.mask,
        model=args.model,
        api_key=args.api_key,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        workers=args.workers,
        dask=args.dask,
        threads=args.threads,
        batch_size=args.batch_size,
        symmetries=args.symmetries,
        interval_s=args.interval,
    )


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM (exit 130 / 143); bad arguments raise (exit 2)."""
    config = config_from_args(args)
    try:
        from scattertag.serve.app import run as serve
    except ImportError as exc:
        raise UserError(f"{exc}; install the extra: pip install 'scattertag[serve]'") from exc
    if config.host not in ("127.0.0.1", "localhost", "::1") and not config.api_key:
        print(
            f"scattertag serve: warning: listening on {config.host} without --api-key; "
            "anyone who can reach it can upload and write",
            file=sys.stderr,
        )
    serve(config)
    return OK
