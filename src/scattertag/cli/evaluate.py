"""``scattertag evaluate``: arguments -> :class:`~scattertag.evaluate.EvaluateConfig` -> scores."""

from __future__ import annotations

import argparse
from pathlib import Path

from scattertag.cli import OK, config_from
from scattertag.errors import UserError
from scattertag.evaluate import EvaluateConfig, evaluate_run, format_table


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scattertag evaluate``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="dataset directory (scattertag build)")
    source.add_argument(
        "--labels", help="labels table of detector files with tags 1/0/blank (TSV or CSV)"
    )
    parser.add_argument(
        "--centres", help="--labels: table of beam centres (local_path, beam_x, beam_y)"
    )
    parser.add_argument(
        "--out",
        help="--labels: folder for eval_labels.json and plots (default: eval_<labels name>)",
    )
    parser.add_argument("--cache", help="--labels: folder to keep the frames' views for reuse")
    parser.add_argument(
        "--model",
        type=Path,
        help="model folder (model.safetensors + model.json); --labels: default the shipped tagger",
    )
    parser.add_argument(
        "--test-shard",
        type=int,
        default=None,
        help="shard to score (default: the run's test shard)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, say where the files went."""
    if args.labels:
        from scattertag.adapt.evaluate_labels import run_labels

        return run_labels(args)
    if not args.model:
        raise UserError("--data needs --model RUN")
    result = evaluate_run(config_from(EvaluateConfig, args))
    print(format_table(result))
    print(f"wrote {args.model / 'eval.json'}, pr_curves.png, ap_by_tag.png, reliability.png")
    return OK
