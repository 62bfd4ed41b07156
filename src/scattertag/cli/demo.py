"""``scattertag demo``: tag the bundled real frames, then train briefly: the tags, the mAP table."""

from __future__ import annotations

import argparse
from pathlib import Path

from scattertag import demo
from scattertag.cli import OK, config_from, default
from scattertag.demo import DemoConfig
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
    """Tag the bundled real frames and print their tags, then train briefly and print mAPs."""
    config = config_from(DemoConfig, args)
    Path(config.out).mkdir(parents=True, exist_ok=True)
    examples = demo.tag_examples(Path(config.out))
    print("Real frames bundled with scattertag, tagged by the shipped model:")
    for row in examples.table:
        print(f"  {Path(row['path']).name:52s} {row['tags'] or row['error'] or '(no tags)'}")
    print(f"wrote {examples.csv} (probabilities of every tag) and {examples.picture}\n")
    print("Training the three views briefly on simulated frames ...")
    result = demo.train_demo(config)
    print(markdown_table(result.rows))
    print(
        f"demo finished in {result.seconds:.0f} s; runs in {result.runs} "
        "(eval.json, pr_curves.png, ap_by_tag.png in each)"
    )
    return OK
