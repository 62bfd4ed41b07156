"""``scattertag train``: train the image, coefficient or joint tagger on a dataset.

Recipe: BCE-with-logits with a per-tag positive weight (rare tags count more),
AdamW (or SGD with Nesterov momentum) under a one-cycle schedule (warm-up, then cosine
decay), D4 frame-symmetry augmentation (:mod:`scattertag.augment`). A validation split of
whole experiments is carved from the training shards (images of one experiment share
detector, beamstop and geometry, so splitting inside an experiment would leak); the
checkpoint with the best validation mAP is the run's model, and the per-tag thresholds
that maximise validation F1 go into its card. The training and validation items are read
from the shards once and held in memory (:class:`InMemory`).

Run directory::

    model.safetensors, model.json   best checkpoint and its card (load_model reads these)
    last.pt                         last epoch: weights, optimiser, schedule (for --resume)
    metrics.jsonl                   one JSON line per epoch

Multi-process: ``torchrun --nproc_per_node 2 -m scattertag.train --data ...`` trains with
DistributedDataParallel (gloo on CPU); each process sees its share of every epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from tqdm import tqdm

from scattertag.augment import augment, group_size
from scattertag.evaluate import (
    average_precision,
    mean_average_precision,
    predict_scores,
    tune_thresholds,
)
from scattertag.features.views import ViewSpec
from scattertag.io.files import publish
from scattertag.models import (
    build_model,
    check_compatible,
    joint_from_views,
    load_model,
    save_model,
)
from scattertag.models.backbones import BACKBONES
from scattertag.parallel import usable_cores

#: Default peak learning rate per (view, optimiser); the joint model is fine-tuned, so lower.
DEFAULT_LR = {
    ("image", "adamw"): 2e-3,
    ("coeff", "adamw"): 2e-3,
    ("joint", "adamw"): 5e-4,
    ("image", "sgd"): 0.05,
    ("coeff", "sgd"): 0.05,
    ("joint", "sgd"): 0.01,
}

#: Upper bound on the positive weight n_neg / n_pos of a rare tag.
MAX_POS_WEIGHT = 10.0


def split_experiments(experiments: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted experiment indices held out for validation: round(fraction * count), at least 1."""
    unique = np.unique(experiments)
    if len(unique) < 2:
        raise ValueError(
            f"need at least 2 experiments in the training shards to carve a validation split, "
            f"found {len(unique)}"
        )
    count = min(len(unique) - 1, max(1, round(fraction * len(unique))))
    return np.sort(np.random.default_rng(seed).choice(unique, count, replace=False))


def positive_weights(manifest: dict, shards: list[int]) -> torch.Tensor:
    """(T,) n_neg / n_pos per tag over ``shards`` (manifest tag counts), clipped to [1, MAX_POS_WEIGHT]."""
    entries = [manifest["shards"][k] for k in shards]
    total = sum(e["images"] for e in entries)
    positives = np.array(
        [sum(e["tag_counts"][t] for e in entries) for t in manifest["vocabulary"]], dtype=float
    )
    weights = (total - positives) / np.maximum(positives, 1.0)
    return torch.tensor(np.clip(weights, 1.0, MAX_POS_WEIGHT), dtype=torch.float32)


#: Candidate weights alpha of the image view when blending the two views' logits per tag.
FUSION_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def fusion_weights(
    image_model: torch.nn.Module, coeff_model: torch.nn.Module, val_set: Dataset
) -> list[float]:
    """Per tag, the alpha of FUSION_GRID whose blend alpha z_image + (1 - alpha) z_coeff has the best validation AP.

    Ties go to the alpha closest to 1/2 (the plain average); tags without validation positives get 1/2.
    """
    (labels, z_image), (_, z_coeff) = (
        predict_scores(m, val_set, logits=True) for m in (image_model, coeff_model)
    )
    by_closeness = sorted(FUSION_GRID, key=lambda a: abs(a - 0.5))
    alphas = []
    for t in range(labels.shape[1]):
        ap = {
            a: average_precision(labels[:, t], a * z_image[:, t] + (1 - a) * z_coeff[:, t])
            for a in by_closeness
        }
        finite = {a: v for a, v in ap.items() if np.isfinite(v)}
        alphas.append(
            max(finite, key=finite.get) if finite else 0.5
        )  # max keeps the first of equals
    return alphas


def initial_model(
    args: argparse.Namespace, manifest: dict, val_set: Dataset
) -> tuple[torch.nn.Module, list[str], list[float] | None]:
    """A fresh tagger for ``args.view`` (joint: from the two single-view runs), the init runs and fusion weights."""
    tags = len(manifest["vocabulary"])
    if args.view == "image":
        arch = {
            "num_tags": tags,
            "backbone": args.backbone,
            "width": args.width,
            "dropout": args.dropout,
            "in_channels": manifest["input_shape"][0],
        }
        return build_model("image", arch), [], None
    if args.view == "coeff":
        arch = {
            "num_tags": tags,
            "coeff_shape": manifest["coeff_shape"],
            "width": args.coeff_width,
            "dropout": args.dropout,
        }
        return build_model("coeff", arch), [], None
    if not (args.init_image and args.init_coeff):
        raise ValueError(
            "--view joint needs --init-image RUN and --init-coeff RUN (trained single-view runs)"
        )
    views = {}
    for view, run_dir in (("image", args.init_image), ("coeff", args.init_coeff)):
        model, card = load_model(run_dir)
        if card["view"] != view:
            raise ValueError(
                f"--init-{view} {run_dir} holds a {card['view']!r} model, expected {view!r}"
            )
        check_compatible(card, manifest, str(run_dir), args.data)
        views[view] = model
    alphas = (
        fusion_weights(views["image"], views["coeff"], val_set)
        if args.fusion_init == "validation"
        else [0.5]
    )
    joint = joint_from_views(views["image"], views["coeff"], alphas)
    return joint, [str(args.init_image), str(args.init_coeff)], alphas


def parameter_groups(model: torch.nn.Module, lr: float, trunk_scale: float) -> list[dict]:
    """Optimiser groups: the tag head at ``lr``, everything else (the trunks) at ``trunk_scale * lr``.

    Fine-tuning the joint model from two trained views, the trunks already work; a lower
    rate keeps them from drifting while the new head learns how to weigh the two views.
    """
    head = [p for name, p in model.named_parameters() if name.startswith("head.")]
    trunks = [p for name, p in model.named_parameters() if not name.startswith("head.")]
    if trunk_scale == 1.0:
        return [{"params": head + trunks, "lr": lr}]
    return [{"params": head, "lr": lr}, {"params": trunks, "lr": trunk_scale * lr}]


def item_bytes(manifest: dict, keep_image: bool) -> int:
    """Bytes of one training item held in memory (float32 image if kept, coefficients, labels)."""
    image = int(np.prod(manifest["input_shape"])) if keep_image else 1
    return 4 * (image + int(np.prod(manifest["coeff_shape"])) + len(manifest["vocabulary"]))


def training_items(
    dataset: Dataset,
    indices: list[int],
    manifest: dict,
    keep_image: bool,
    workers: int,
    budget_mb: float,
    desc: str,
) -> Dataset:
    """``dataset[indices]`` held in memory if it fits in ``budget_mb``, else read lazily from the shards.

    Memory stays bounded whatever the dataset size: above the budget every epoch reads
    from HDF5 again (slower, about 4 ms per item), below it the shards are read once.
    """
    if len(indices) * item_bytes(manifest, keep_image) > budget_mb * 1e6:
        return Subset(dataset, indices)
    return InMemory(dataset, indices, keep_image, workers, desc)


class InMemory(Dataset):
    """Items of ``dataset[indices]`` read once into memory (reading HDF5 per item would cost every epoch).

    The coefficient view never looks at the image, so for it a (1, 1, 1) zero placeholder
    is kept instead (memory: ~ n * 4 * S^2 bytes for image views, n * 4 * C(N+1)K for coeff);
    :func:`training_items` uses it only under a memory budget.
    """

    def __init__(
        self, dataset: Dataset, indices: list[int], keep_image: bool, workers: int, desc: str
    ) -> None:
        loader = DataLoader(Subset(dataset, indices), batch_size=128, num_workers=workers)
        parts: dict[str, list[torch.Tensor]] = {"image": [], "coeff": [], "labels": []}
        for batch in tqdm(loader, desc=desc, leave=False, unit="batch"):
            image = batch["image"] if keep_image else torch.zeros(len(batch["labels"]), 1, 1, 1)
            for key, value in (
                ("image", image),
                ("coeff", batch["coeff"]),
                ("labels", batch["labels"]),
            ):
                parts[key].append(value)
        self.tensors = {k: torch.cat(v) for k, v in parts.items()}

    def __len__(self) -> int:
        return len(self.tensors["labels"])

    def __getitem__(self, index: int) -> dict:
        return {k: v[index] for k, v in self.tensors.items()}


class Checkpoint:
    """``RUN/last.pt``: everything needed to continue training after the last finished epoch."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "last.pt"

    def save(self, model, optimiser, schedule, epoch: int, best: float, recipe: dict) -> None:
        """Write atomically (temporary name, then rename)."""
        tmp = self.path.with_name("last.pt.tmp")
        torch.save(
            {
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "schedule": schedule.state_dict(),
                "epoch": epoch,
                "best": best,
                "recipe": json.dumps(recipe),
            },
            tmp,
        )
        publish(tmp, self.path)

    def load(self, model, optimiser, schedule, recipe: dict) -> tuple[int, float]:
        """Restore state from the file (no code executed); returns (next epoch, best val mAP)."""
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises several types for a damaged file
            raise ValueError(f"checkpoint {self.path} is corrupt or unreadable: {err}") from None
        saved = json.loads(state["recipe"])
        fixed = (
            "view",
            "data",
            "arch",
            "epochs",
            "batch_size",
            "optimizer",
            "lr",
            "trunk_lr_scale",
        )
        differ = [k for k in fixed if saved.get(k) != recipe.get(k)]
        if differ:
            raise ValueError(
                f"cannot resume {self.path}: it was trained with "
                f"{ {k: saved.get(k) for k in differ} }, this run asks for { {k: recipe.get(k) for k in differ} }"
            )
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        return int(state["epoch"]) + 1, float(state["best"])


def setup_distributed() -> tuple[int, int]:
    """(rank, world size); joins the gloo process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return (dist.get_rank() if world > 1 else 0), world


def train(args: argparse.Namespace) -> dict:
    """Train one view as configured by ``args``; returns the best model's card."""
    from scattertag.data import ShardDataset, fold_shards, read_manifest

    rank, world = setup_distributed()
    torch.set_num_threads(args.threads or max(1, usable_cores() // world))
    torch.manual_seed(args.seed)
    run_dir = Path(args.out)
    manifest = read_manifest(args.data)
    train_shards, (test_shard,) = fold_shards(args.test_shard)
    data = ShardDataset(args.data, train_shards)
    val_experiments = split_experiments(data.experiments, args.val_fraction, args.seed)
    is_val = np.isin(data.experiments, val_experiments)
    keep_image = args.view != "coeff"
    train_set, val_set = (
        training_items(
            data,
            np.flatnonzero(rows).tolist(),
            manifest,
            keep_image,
            args.workers,
            args.memory_mb * share,
            f"load {name}",
        )
        for name, rows, share in (
            ("train", ~is_val, 1 - args.val_fraction),
            ("val", is_val, args.val_fraction),
        )
    )

    model, init_runs, fusion = initial_model(args, manifest, val_set)
    lr = args.lr or DEFAULT_LR[(args.view, args.optimizer)]
    recipe = {
        "view": args.view,
        "data": str(args.data),
        "backbone": getattr(model, "arch", {}).get("backbone"),
        "arch": model.arch,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "lr": lr,
        "trunk_lr_scale": args.trunk_lr_scale if args.view == "joint" else 1.0,
        "weight_decay": args.weight_decay,
        "schedule": "one-cycle (15% warm-up, cosine decay)",
        "augment": "none"
        if args.no_augment
        else f"D4 frame symmetries ({group_size(manifest['vocabulary'])} elements)",
        "pos_weight_max": MAX_POS_WEIGHT,
        "seed": args.seed,
        "val_fraction": args.val_fraction,
        "val_experiments": val_experiments.tolist(),
        "train_shards": train_shards,
        "test_shard": test_shard,
        "train_images": len(train_set),
        "val_images": len(val_set),
        "init": init_runs,
        "fusion_init": fusion,
        "processes": world,
        "dataset": {
            k: manifest.get(k)
            for k in (
                "recipe",
                "seed",
                "experiments",
                "images_per_experiment",
                "input_shape",
                "coeff_shape",
                "image_shape",
            )
        },
    }
    sampler = DistributedSampler(
        train_set, num_replicas=world, rank=rank, shuffle=True, seed=args.seed
    )
    loader = DataLoader(
        train_set,
        batch_size=args.batch_size,
        sampler=sampler,
        drop_last=len(train_set) // world > args.batch_size,
    )
    groups = parameter_groups(model, lr, recipe["trunk_lr_scale"])
    if args.optimizer == "adamw":
        optimiser = torch.optim.AdamW(groups, lr=lr, weight_decay=args.weight_decay)
    else:
        optimiser = torch.optim.SGD(
            groups, lr=lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay
        )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser,
        max_lr=[g["lr"] for g in groups],
        total_steps=args.epochs * len(loader),
        pct_start=0.15,
    )
    checkpoint = Checkpoint(run_dir)
    start_epoch, best = 0, -1.0
    if args.resume and checkpoint.path.is_file():
        start_epoch, best = checkpoint.load(model, optimiser, schedule, recipe)
    elif (run_dir / "model.json").exists() and not args.resume:
        raise FileExistsError(
            f"{run_dir} already holds a trained model; use --resume to continue or another --out"
        )
    net = DistributedDataParallel(model) if world > 1 else model
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=positive_weights(manifest, train_shards))
    symmetries = 1 if args.no_augment else group_size(manifest["vocabulary"])
    cake = ViewSpec.from_dict(manifest["view_spec"]).image_space == "cake"
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        print(
            f"{args.view} view: {len(train_set)} train / {len(val_set)} val images "
            f"({len(val_experiments)} val experiments), test shard {test_shard}, {world} process(es), "
            f"{torch.get_num_threads()} threads, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M weights"
        )
    card = None

    def validate(epoch: int, entry: dict) -> None:
        """Score the validation split after ``epoch``; keep the model if it is the best so far (rank 0)."""
        nonlocal best, card
        labels, scores = predict_scores(model, val_set, args.batch_size * 2, progress="validate")
        val_map = mean_average_precision(labels, scores)
        entry = {"epoch": epoch, **entry, "val_mAP": val_map}
        if val_map > best:
            best = val_map
            card = {
                "backbone": recipe["backbone"],
                "vocabulary": list(manifest["vocabulary"]),
                "view_spec": manifest["view_spec"],
                "thresholds": tune_thresholds(labels, scores).tolist(),
                "recipe": recipe,
                "metrics": {"val_mAP": val_map, "epoch": epoch},
            }
            save_model(model, card, run_dir)
            entry["best"] = True
        with open(run_dir / "metrics.jsonl", "a") as log:
            log.write(json.dumps(entry) + "\n")
        loss = f"loss {entry['train_loss']:.4f}, " if "train_loss" in entry else "before training: "
        speed = f", {entry['images_per_s']:.0f} images/s" if "images_per_s" in entry else ""
        print(
            f"epoch {epoch}/{args.epochs}: {loss}val mAP {val_map:.4f}{' (best)' if entry.get('best') else ''}{speed}",
            flush=True,
        )

    if args.view == "joint" and start_epoch == 0 and rank == 0:
        # the blended start is already a model: fine-tuning must beat it on validation to replace it
        validate(0, {})
    for epoch in range(start_epoch, args.epochs):
        sampler.set_epoch(epoch)
        generator = torch.Generator().manual_seed(args.seed * 1000 + epoch * world + rank)
        net.train()
        start, total, seen = time.perf_counter(), 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{args.epochs}", disable=rank != 0, leave=False)
        for batch in bar:
            image, coeff = augment(batch["image"], batch["coeff"], symmetries, generator, cake)
            loss = loss_fn(net(image, coeff), batch["labels"])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(image)
            seen += len(image)
            bar.set_postfix(loss=f"{total / seen:.4f}")
        seconds = time.perf_counter() - start
        if rank == 0:
            validate(
                epoch + 1,
                {
                    "train_loss": total / max(seen, 1),
                    "lr": schedule.get_last_lr()[0],
                    "seconds": round(seconds, 2),
                    "images_per_s": round(seen * world / seconds, 1),
                },
            )
            checkpoint.save(model, optimiser, schedule, epoch, best, recipe)
        if world > 1:
            dist.barrier()
    if world > 1:
        dist.destroy_process_group()
    return card if card is not None else json.loads((run_dir / "model.json").read_text())


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scattertag train``."""
    parser.add_argument("--data", required=True, help="dataset directory (scattertag build)")
    parser.add_argument("--view", required=True, choices=["image", "coeff", "joint"])
    parser.add_argument("--out", required=True, help="run directory to write")
    parser.add_argument(
        "--backbone", default="alexnet", choices=list(BACKBONES), help="image trunk"
    )
    parser.add_argument(
        "--width", type=int, default=None, help="image trunk width (default: the backbone's)"
    )
    parser.add_argument("--coeff-width", type=int, default=32, help="coefficient trunk width")
    parser.add_argument(
        "--dropout", type=float, default=0.3, help="dropout before the tag head (single views)"
    )
    parser.add_argument("--init-image", help="joint view: trained image run to start from")
    parser.add_argument("--init-coeff", help="joint view: trained coefficient run to start from")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--lr",
        type=float,
        default=None,
        help="peak learning rate (default: per view and optimiser)",
    )
    parser.add_argument(
        "--fusion-init",
        choices=("validation", "mean"),
        default="validation",
        help="joint view: start from per-tag logit blends chosen on validation, or the plain mean",
    )
    parser.add_argument(
        "--trunk-lr-scale",
        type=float,
        default=1.0,
        help="joint view: the trunks' learning rate as a fraction of the head's (default 1)",
    )
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--optimizer", default="adamw", choices=["adamw", "sgd"])
    parser.add_argument(
        "--no-augment", action="store_true", help="switch off the D4 frame-symmetry augmentation"
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="fraction of training experiments for validation",
    )
    parser.add_argument(
        "--test-shard", type=int, default=9, help="shard kept out for testing (0-9)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workers", type=int, default=0, help="DataLoader worker processes reading the shards"
    )
    parser.add_argument(
        "--memory-mb",
        type=float,
        default=4000.0,
        help="hold the training items in memory up to this size, else read the shards each epoch",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per process (default: cores / processes)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from RUN/last.pt")


def check_args(args: argparse.Namespace) -> None:
    """ValueError naming the first argument out of its allowed range."""
    ranges = [
        ("epochs", args.epochs, 1, 10_000),
        ("batch_size", args.batch_size, 1, 4096),
        ("val_fraction", args.val_fraction, 0.01, 0.5),
        ("workers", args.workers, 0, 64),
    ]
    for name, value, lo, hi in ranges:
        if not lo <= value <= hi:
            raise ValueError(f"--{name.replace('_', '-')} must be in [{lo}, {hi}], got {value}")
    if args.lr is not None and not 0 < args.lr < 10:
        raise ValueError(f"--lr must be in (0, 10), got {args.lr}")


def run(args: argparse.Namespace) -> int:
    """Train, then print where the model went."""
    check_args(args)
    card = train(args)
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"best val mAP {card['metrics']['val_mAP']:.4f} at epoch {card['metrics']['epoch']}: "
            f"{Path(args.out) / 'model.safetensors'}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m scattertag.train`` (what torchrun starts)."""
    parser = argparse.ArgumentParser(prog="scattertag.train", description=__doc__.splitlines()[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
