"""``scattertag evaluate``: arguments -> :class:`~scattertag.evaluate.EvaluateConfig` -> scores."""

from __future__ import annotations

import argparse
from pathlib import Path

from scattertag.cli import OK, add_symmetries_argument, config_from, warn_skipped
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
        type=Path,
        help="folder for eval.json / eval_labels.json and the plots (default: --data: the "
        "model's folder, or eval_<data name> for the shipped tagger; --labels: "
        "eval_<labels name>)",
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
        nargs="+",
        default=None,
        help="shard(s) to score, pooled (default: the run's test shard)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    add_symmetries_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, say where the files went."""
    if args.labels:
        return run_labels(args)
    if not args.model:
        raise UserError("--data needs --model RUN")
    result = evaluate_run(config_from(EvaluateConfig, args))
    print(format_table(result))
    print(
        f"wrote {Path(result['out']) / 'eval.json'}, pr_curves.png, ap_by_tag.png, reliability.png"
    )
    return OK


def run_labels(args: argparse.Namespace) -> int:
    """``scattertag evaluate --labels``: score, print the table, say where the files went."""
    from scattertag.adapt.evaluate_labels import evaluate_labels
    from scattertag.adapt.scoring import format_labelled

    out = Path(args.out or f"eval_{Path(args.labels).stem}")
    result = evaluate_labels(
        args.labels, args.model, args.centres, out, True, args.cache, args.symmetries
    )
    print(format_labelled(result))
    warn_skipped(result["skipped"])
    print(f"wrote {out / 'eval_labels.json'}, pr_curves.png, ap_by_tag.png, reliability.png")
    return OK
