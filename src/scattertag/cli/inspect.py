"""``scattertag inspect DIR``: summary, tag table, montage; exit 1 if a shard fails its check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scattertag.cli import OK, SOME_FAILED
from scattertag.data.inspect import inspect_dataset
from scattertag.data.manifest import NUM_SHARDS


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scattertag inspect``."""
    parser.add_argument(
        "root", type=Path, metavar="DIR", help="dataset directory (made by scattertag build)"
    )
    parser.add_argument(
        "--montage",
        type=Path,
        default=None,
        help="montage PNG of a few images per tag (default DIR/montage.png)",
    )
    parser.add_argument(
        "--per-tag", type=int, default=2, help="images per tag in the montage (default 2)"
    )


def run(args: argparse.Namespace) -> int:
    """Print the summary, the table and where the montage went; list failing shards."""
    found = inspect_dataset(args.root, args.montage, args.per_tag)
    print(found.summary)
    if found.table is not None:
        print(found.table)
        print(f"montage: {found.montage}")
    if found.problems:
        print("checksums: FAILED\n  " + "\n  ".join(found.problems.values()), file=sys.stderr)
        return SOME_FAILED
    print(f"checksums: all {NUM_SHARDS} shards match the manifest")
    return OK
