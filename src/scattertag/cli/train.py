"""``scattertag train``: arguments -> :class:`~scattertag.train.TrainConfig` -> a trained run.

Also what ``torchrun --nproc_per_node 2 -m scattertag.train ARGS`` runs in each process.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from scattertag.cli import OK, config_from, default
from scattertag.models.backbones import BACKBONES
from scattertag.train import TrainConfig, train


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scattertag train``; defaults are :class:`TrainConfig`'s."""

    def option(name: str, kind: type, help_text: str, **kwargs: Any) -> None:
        field = name.replace("-", "_")
        parser.add_argument(
            f"--{name}", type=kind, default=default(TrainConfig, field), help=help_text, **kwargs
        )

    parser.add_argument(
        "--data",
        required=True,
        type=Path,
        nargs="+",
        metavar="DIR",
        help="dataset directory (scattertag build); several are trained on together (same "
        "vocabulary and views), each keeping its own test shard out",
    )
    parser.add_argument("--view", required=True, choices=["image", "coeff", "joint"])
    parser.add_argument("--out", required=True, type=Path, help="run directory to write")
    option("backbone", str, "image trunk", choices=list(BACKBONES))
    option("width", int, "image trunk width (default: the backbone's)")
    option("coeff-width", int, "coefficient trunk width")
    option("dropout", float, "dropout before the tag head (single views)")
    option("init-image", Path, "joint view: trained image run to start from")
    option("init-coeff", Path, "joint view: trained coefficient run to start from")
    option("init-model", Path, "a saved tagger of this view to go on training (fine-tuning)")
    option("epochs", int, "training epochs")
    option("batch-size", int, "images per network batch")
    option("lr", float, "peak learning rate (default: per view and optimiser)")
    option(
        "fusion-init",
        str,
        "joint view: start from per-tag logit blends chosen on validation, or the plain mean",
        choices=("validation", "mean"),
    )
    option("trunk-lr-scale", float, "joint view: the trunks' learning rate / the head's")
    option("weight-decay", float, "AdamW / SGD weight decay")
    option("optimizer", str, "optimiser", choices=["adamw", "sgd"])
    parser.add_argument(
        "--no-augment", action="store_true", help="switch off the D4 frame-symmetry augmentation"
    )
    option("val-fraction", float, "fraction of training experiments for validation")
    option("test-shard", int, "shard kept out for testing (0-9)")
    option("seed", int, "random seed")
    option("workers", int, "DataLoader worker processes reading the shards")
    option(
        "memory-mb",
        float,
        "hold the training items in memory up to this size, else read the shards each epoch",
    )
    option("threads", int, "torch threads per process (default: cores / processes)")
    parser.add_argument("--resume", action="store_true", help="continue from RUN/last.pt")


def run(args: argparse.Namespace) -> int:
    """Train, then print where the model went (rank 0 only)."""
    config = config_from(
        TrainConfig,
        args,
        data=args.data[0],
        more_data=tuple(args.data[1:]),
        augment=not args.no_augment,
    )
    card = train(config)
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"best val mAP {card.metrics['val_mAP']:.4f} at epoch {card.metrics['epoch']}: "
            f"{config.out / 'model.safetensors'}"
        )
    return OK


def main(argv: list[str] | None = None) -> int:
    """``python -m scattertag.train ARGS`` (what torchrun starts) is ``scattertag train ARGS``."""
    from scattertag.cli import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
