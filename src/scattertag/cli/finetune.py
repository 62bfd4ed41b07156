"""``scattertag finetune``: arguments -> :class:`~scattertag.adapt.finetune.FinetuneConfig`.

See :func:`scattertag.adapt.command.finetune` for what the output folder holds.
"""

from __future__ import annotations

import argparse

import torch

from scattertag.adapt.command import finetune
from scattertag.adapt.finetune import NORMS, UPDATES, FinetuneConfig
from scattertag.adapt.folds import format_folds
from scattertag.cli import OK, config_from, warn_skipped


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scattertag finetune``."""
    defaults = FinetuneConfig()
    parser.add_argument("--labels", required=True, help="labels table (TSV/CSV; tags 1/0/blank)")
    parser.add_argument("--centres", help="table of beam centres (local_path, beam_x, beam_y)")
    parser.add_argument("--model", help="base model folder (default: the shipped tagger)")
    parser.add_argument("--out", required=True, help="folder for the fine-tuned model")
    parser.add_argument(
        "--update",
        choices=UPDATES,
        default=defaults.update,
        help="what to train: the tag head, the head and each trunk's last block, or all "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--norm",
        choices=NORMS,
        default=defaults.norm,
        help="batch-norm statistics: kept, re-estimated on the labelled frames (adapt), or on "
        "the labelled and replay frames (mixed), once before training (default: %(default)s)",
    )
    parser.add_argument(
        "--blend",
        type=float,
        default=defaults.blend,
        help="keep (1 - BLEND) base + BLEND fine-tuned weights: lower keeps more of the base "
        "model's skill on its own frames (default: %(default)s)",
    )
    parser.add_argument(
        "--replay",
        default="simulate",
        help="synthetic replay: 'simulate' (the base model's recipe), a built dataset folder, "
        "or 'none' (default: %(default)s)",
    )
    parser.add_argument("--replay-frames", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument(
        "--folds", type=int, default=0, help="also estimate the gain by grouped K-fold CV"
    )
    parser.add_argument("--max-epochs", type=int, default=defaults.max_epochs)
    parser.add_argument("--patience", type=int, default=defaults.patience)
    parser.add_argument("--lr", type=float, default=defaults.lr, help="head learning rate")
    parser.add_argument("--trunk-lr-scale", type=float, default=defaults.trunk_lr_scale)
    parser.add_argument("--val-fraction", type=float, default=defaults.val_fraction)
    parser.add_argument("--exposure-copies", type=int, default=defaults.exposure_copies)
    parser.add_argument(
        "--calibration", choices=("temperature", "platt", "none"), default=defaults.calibration
    )
    parser.add_argument(
        "--threshold-min-labels",
        type=int,
        default=defaults.threshold_min_labels,
        help="held-out positives and negatives a tag needs before its threshold is re-tuned "
        "for F1; with fewer the base model's threshold is kept (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--cache", help="folder to keep the labelled frames' views for reuse")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Fine-tune, print the held-out scores (and the K-fold estimate)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    config = config_from(FinetuneConfig, args)
    report = finetune(
        args.labels,
        args.out,
        args.model,
        args.centres,
        config,
        args.replay,
        args.replay_frames,
        args.folds,
        progress=not args.quiet,
        cache=args.cache,
    )
    warn_skipped(report["skipped"])
    if "cross_validation" in report:
        print(format_folds(report["cross_validation"]))
    show = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    b, a = report["held_out_before"], report["held_out_after"]
    print(
        f"final model: {report['frames']} frames, held-out mAP {show(b['mAP'])} -> "
        f"{show(a['mAP'])}, ECE {show(b['ECE'])} -> {show(a['ECE'])}, "
        f"best epoch {report['training']['best_epoch']} "
        f"({report['training']['seconds']} s) -> {report['model']}"
    )
    return OK
