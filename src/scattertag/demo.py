"""``scattertag demo``: the whole pipeline, small: dataset, three views, mAP table.

Builds a small dataset (256 x 256 frames), trains the image, coefficient and joint
taggers briefly and prints their test mAP; a few minutes on two cores. The same steps
at full scale are ``scattertag build``, ``train`` and ``evaluate`` (see the README).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from scattertag.study import Settings, markdown_table, three_views

#: Small enough for a few minutes on 2 cores, large enough that every view learns.
DEMO = Settings(
    experiments=40,
    images_per_experiment=16,
    input_size=128,
    backbone="resnet",
    epochs=12,
    coeff_epochs=10,
    joint_epochs=3,
    batch_size=32,
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scattertag demo``."""
    parser.add_argument(
        "--out", default="scattertag-demo", help="directory for the dataset and runs"
    )
    parser.add_argument("--size", type=int, default=256, help="simulated frame size (pixels)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print the table."""
    start = time.perf_counter()
    out = Path(args.out)
    settings = Settings(**{**DEMO.__dict__, "seed": args.seed})
    rows = three_views(out / "data", out / "runs", args.size, settings)
    print(markdown_table(rows))
    print(
        f"demo finished in {time.perf_counter() - start:.0f} s; runs in {out / 'runs'} "
        f"(eval.json, pr_curves.png, ap_by_tag.png in each)"
    )
    return 0
