"""``scattertag study resolution``: arguments -> :class:`~scattertag.study.StudyConfig` -> table."""

from __future__ import annotations

import argparse
from dataclasses import asdict, fields
from pathlib import Path

from scattertag.cli import OK
from scattertag.study import Settings, StudyConfig, markdown_table, resolution_study


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scattertag study``: sizes, folder and every :class:`Settings` field."""
    parser.add_argument("study", choices=["resolution"], help="which study to run")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[256, 1000, 2000], help="frame sizes to compare"
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="study directory (datasets, runs, table, plot)"
    )
    for name, value in asdict(Settings()).items():
        kind = str if name == "backbone" else int
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=value)


def run(args: argparse.Namespace) -> int:
    """Run the study; print the table and where it went."""
    settings = Settings(**{f.name: getattr(args, f.name) for f in fields(Settings)})
    result = resolution_study(StudyConfig(args.out, tuple(args.sizes), settings))
    print(markdown_table(result.rows))
    print(f"wrote {result.table}, {result.json.name}, {result.plot.name}")
    return OK
