"""``scattertag preview``: arguments -> :class:`~scattertag.simulate.preview.PreviewConfig`."""

from __future__ import annotations

import argparse
from pathlib import Path

from scattertag.cli import OK, config_from
from scattertag.simulate.preview import PreviewConfig, preview


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scattertag preview``."""
    parser.add_argument(
        "--size", type=int, default=1000, help="frame side in pixels (default 1000)"
    )
    parser.add_argument("--count", type=int, default=12, help="number of images (default 12)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--per-experiment",
        type=int,
        default=1,
        help="images per experiment (default 1: every panel a new experiment)",
    )
    parser.add_argument(
        "--gisaxs", type=float, default=0.0, help="fraction of grazing-incidence experiments"
    )
    parser.add_argument("--columns", type=int, default=4, help="panels per row (default 4)")
    parser.add_argument(
        "--out", type=Path, default=Path("preview.png"), help="output PNG (default preview.png)"
    )
    parser.add_argument(
        "--tally",
        type=int,
        default=0,
        metavar="N",
        help="also print the tag frequencies of N images (default 0: none)",
    )


def run(args: argparse.Namespace) -> int:
    """Draw the montage; print the tally if asked for."""
    config = config_from(PreviewConfig, args)
    result = preview(config)
    print(f"wrote {result.montage}")
    if result.tag_fractions is not None:
        print(
            f"tag frequencies over {config.tally} images ({config.per_experiment} per "
            f"experiment), size {config.size}, seed {config.seed}:"
        )
        for tag, fraction in result.tag_fractions.items():
            print(f"  {tag:20s} {fraction:6.3f}")
    return OK
