"""``scattertag demo``: arguments -> :class:`~scattertag.demo.DemoConfig` -> the mAP table."""

from __future__ import annotations

import argparse
from pathlib import Path

from scattertag.cli import OK, config_from, default
from scattertag.demo import DemoConfig, run_demo
from scattertag.study import markdown_table


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scattertag demo``."""
    parser.add_argument(
        "--out",
        type=Path,
        default=default(DemoConfig, "out"),
        help="directory for the dataset and runs (default %(default)s)",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=default(DemoConfig, "size"),
        help="simulated frame size (pixels)",
    )
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print the table."""
    result = run_demo(config_from(DemoConfig, args))
    print(markdown_table(result.rows))
    print(
        f"demo finished in {result.seconds:.0f} s; runs in {result.runs} "
        "(eval.json, pr_curves.png, ap_by_tag.png in each)"
    )
    return OK
