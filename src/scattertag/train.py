"""Train the image, coefficient or joint tagger on a dataset (``scattertag train``).

:func:`train` takes a :class:`TrainConfig` and returns the best model's
:class:`~scattertag.models.card.ModelCard`. The method: BCE-with-logits with a per-tag
positive weight (rare tags count more),
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

Multi-process: ``torchrun --nproc_per_node 2 -m scattertag.train --data ...`` (the
arguments of ``scattertag train``) trains with DistributedDataParallel (gloo on CPU);
each process sees its share of every epoch.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from tqdm import tqdm

from scattertag.augment import augment, group_size
from scattertag.data.manifest import DatasetManifest, read_matching_manifests
from scattertag.errors import UserError
from scattertag.evaluate import (
    average_precision,
    mean_average_precision,
    predict_scores,
    tune_thresholds,
)
from scattertag.features.views import ViewSpec
from scattertag.io.files import atomic_path
from scattertag.models import (
    CoeffTagger,
    ImageTagger,
    ModelCard,
    Tagger,
    build_model,
    check_compatible,
    joint_from_views,
    load_model,
    save_model,
)
from scattertag.models.backbones import BACKBONES
from scattertag.parallel import usable_cores

View = Literal["image", "coeff", "joint"]

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


@dataclass(frozen=True)
class TrainConfig:
    """One training run: the dataset, the view and network, the optimisation, the resources.

    data, out : dataset directory (``scattertag build``) and run directory to write.
    more_data : further dataset directories trained on together with ``data`` (the same
        vocabulary and view spec; e.g. two simulator recipes). Each keeps its own test shard
        and validation experiments out; ``data``'s manifest names the run's dataset.
    view : "image", "coeff" or "joint"; the joint view starts from the trained single-view
        runs ``init_image`` and ``init_coeff``, blended per tag (``fusion_init``).
    init_model : a saved tagger of ``view`` (its run folder, or the shipped one's) to go on
        training on this dataset, e.g. the shipped tagger on a new simulator's frames.
    lr : peak learning rate of the one-cycle schedule (None: :data:`DEFAULT_LR`);
        ``trunk_lr_scale`` scales it for the joint model's trunks.
    val_fraction : fraction of the training experiments held out for validation.
    test_shard : shard kept out for testing (0-9). ``memory_mb`` bounds the items held in
        memory; ``threads`` is torch's per process (None: cores / processes).
    """

    data: Path
    view: View
    out: Path
    more_data: tuple[Path, ...] = ()
    backbone: str = "alexnet"
    width: int | None = None
    coeff_width: int = 32
    dropout: float = 0.3
    init_image: Path | None = None
    init_coeff: Path | None = None
    init_model: Path | None = None
    epochs: int = 10
    batch_size: int = 32
    lr: float | None = None
    fusion_init: Literal["validation", "mean"] = "validation"
    trunk_lr_scale: float = 1.0
    weight_decay: float = 1e-4
    optimizer: Literal["adamw", "sgd"] = "adamw"
    augment: bool = True
    val_fraction: float = 0.1
    test_shard: int = 9
    seed: int = 0
    workers: int = 0
    memory_mb: float = 4000.0
    threads: int | None = None
    resume: bool = False

    def __post_init__(self) -> None:
        """UserError naming the first setting out of its allowed range or set."""
        choices = [
            ("view", self.view, ("image", "coeff", "joint")),
            ("optimizer", self.optimizer, ("adamw", "sgd")),
            ("fusion_init", self.fusion_init, ("validation", "mean")),
            ("backbone", self.backbone, tuple(BACKBONES)),
        ]
        for setting, choice, allowed in choices:
            if choice not in allowed:
                raise UserError(f"{setting} must be one of {', '.join(allowed)}, got {choice!r}")
        ranges = [
            ("epochs", self.epochs, 1, 10_000),
            ("batch_size", self.batch_size, 1, 4096),
            ("val_fraction", self.val_fraction, 0.01, 0.5),
            ("workers", self.workers, 0, 64),
        ]
        for name, value, lo, hi in ranges:
            if not lo <= value <= hi:
                raise UserError(f"--{name.replace('_', '-')} must be in [{lo}, {hi}], got {value}")
        if self.lr is not None and not 0 < self.lr < 10:
            raise UserError(f"--lr must be in (0, 10), got {self.lr}")
        if self.init_model and (self.init_image or self.init_coeff):
            raise UserError("--init-model starts from one saved tagger: drop --init-image/coeff")
        if self.view == "joint" and not (self.init_model or (self.init_image and self.init_coeff)):
            raise UserError(
                "--view joint needs --init-image RUN and --init-coeff RUN "
                "(trained single-view runs), or --init-model RUN (a saved joint tagger)"
            )

    @property
    def peak_lr(self) -> float:
        """The peak learning rate: ``lr`` or the default of the view and optimiser."""
        return self.lr or DEFAULT_LR[(self.view, self.optimizer)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (paths as text)."""
        return {k: _plain(v) for k, v in asdict(self).items()}


def _plain(value: Any) -> Any:
    """``value`` for JSON: paths as text, tuples of paths as lists of text."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


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


def positive_weights(manifests: list[DatasetManifest], shards: list[int]) -> torch.Tensor:
    """(T,) n_neg / n_pos per tag over ``shards`` of all ``manifests`` (their counts), in
    [1, MAX_POS_WEIGHT]."""
    entries = [e for m in manifests for e in (m.shards[k] for k in shards) if e is not None]
    total = sum(e.images for e in entries)
    positives = np.array(
        [sum(e.tag_counts[t] for e in entries) for t in manifests[0].vocabulary], dtype=float
    )
    weights = (total - positives) / np.maximum(positives, 1.0)
    return torch.tensor(np.clip(weights, 1.0, MAX_POS_WEIGHT), dtype=torch.float32)


#: Candidate weights alpha of the image view when blending the two views' logits per tag.
FUSION_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def fusion_weights(
    image_model: torch.nn.Module, coeff_model: torch.nn.Module, val_set: Dataset
) -> list[float]:
    """Per tag, the alpha of FUSION_GRID whose blend alpha z_image + (1 - alpha) z_coeff
    has the best validation AP.

    Ties go to the alpha closest to 1/2 (the plain average); tags without validation
    positives get 1/2.
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
        alphas.append(max(finite, key=lambda a: finite[a]) if finite else 0.5)  # first of equals
    return alphas


def initial_model(
    config: TrainConfig, manifest: DatasetManifest, val_set: Dataset
) -> tuple[Tagger, list[str], list[float] | None]:
    """A fresh tagger for ``config.view`` (joint: from two single-view runs), init runs, fusion."""
    if config.init_model is not None:
        model, card = load_model(config.init_model)
        if card.view != config.view:
            raise UserError(
                f"--init-model {config.init_model} holds a {card.view!r} model, "
                f"expected {config.view!r}"
            )
        check_compatible(card, manifest, str(config.init_model), str(config.data))
        return model, [str(config.init_model)], None
    tags = len(manifest.vocabulary)
    if config.view == "image":
        arch = {
            "num_tags": tags,
            "backbone": config.backbone,
            "width": config.width,
            "dropout": config.dropout,
            "in_channels": (manifest.input_shape or [1])[0],
        }
        return build_model("image", arch), [], None
    if config.view == "coeff":
        arch = {
            "num_tags": tags,
            "coeff_shape": manifest.coeff_shape,
            "width": config.coeff_width,
            "dropout": config.dropout,
        }
        return build_model("coeff", arch), [], None
    views = {}
    for view, run_dir in (("image", config.init_image), ("coeff", config.init_coeff)):
        model, card = load_model(run_dir)
        if card.view != view:
            raise UserError(
                f"--init-{view} {run_dir} holds a {card.view!r} model, expected {view!r}"
            )
        check_compatible(card, manifest, str(run_dir), str(config.data))
        views[view] = model
    image, coeff = views["image"], views["coeff"]
    if not (isinstance(image, ImageTagger) and isinstance(coeff, CoeffTagger)):
        raise UserError("--init-image and --init-coeff must be runs of those single views")
    alphas = fusion_weights(image, coeff, val_set) if config.fusion_init == "validation" else [0.5]
    joint = joint_from_views(image, coeff, alphas)
    return joint, [str(config.init_image), str(config.init_coeff)], alphas


def parameter_groups(model: torch.nn.Module, lr: float, trunk_scale: float) -> list[dict]:
    """Optimiser groups: the tag head at ``lr``, the rest (the trunks) at ``trunk_scale * lr``.

    Fine-tuning the joint model from two trained views, the trunks already work; a lower
    rate keeps them from drifting while the new head learns how to weigh the two views.
    """
    head = [p for name, p in model.named_parameters() if name.startswith("head.")]
    trunks = [p for name, p in model.named_parameters() if not name.startswith("head.")]
    if trunk_scale == 1.0:
        return [{"params": head + trunks, "lr": lr}]
    return [{"params": head, "lr": lr}, {"params": trunks, "lr": trunk_scale * lr}]


def item_bytes(input_shape: list[int], coeff_shape: list[int], tags: int, keep_image: bool) -> int:
    """Bytes of one training item held in memory (float32 image if kept, coefficients, labels)."""
    image = int(np.prod(input_shape)) if keep_image else 1
    return 4 * (image + int(np.prod(coeff_shape)) + tags)


def training_items(
    dataset: Dataset,
    indices: list[int],
    item_size: int,
    workers: int,
    budget_mb: float,
    desc: str,
    keep_image: bool = True,
) -> Subset | InMemory:
    """``dataset[indices]`` in memory if it fits in ``budget_mb``, else read lazily from shards.

    Memory stays bounded whatever the dataset size: above the budget every epoch reads
    from HDF5 again (slower, about 4 ms per item), below it the shards are read once.
    ``item_size`` is :func:`item_bytes` of one item.
    """
    if len(indices) * item_size > budget_mb * 1e6:
        return Subset(dataset, indices)
    return InMemory(dataset, indices, keep_image, workers, desc)


class InMemory(Dataset):
    """Items of ``dataset[indices]`` read once into memory (not from HDF5 every epoch).

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

    #: Settings a resumed run must share with the interrupted one.
    FIXED = (
        "view",
        "data",
        "more_data",
        "arch",
        "epochs",
        "batch_size",
        "optimizer",
        "lr",
        "trunk_lr_scale",
    )

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "last.pt"

    def save(self, model, optimiser, schedule, epoch: int, best: float, training: dict) -> None:
        """Write atomically (temporary name, fsync, rename)."""
        state = {
            "model": model.state_dict(),
            "optimiser": optimiser.state_dict(),
            "schedule": schedule.state_dict(),
            "epoch": epoch,
            "best": best,
            "training": json.dumps(training),
        }
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)

    def load(self, model, optimiser, schedule, training: dict) -> tuple[int, float]:
        """Restore state from the file (no code executed); returns (next epoch, best val mAP)."""
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises several types for a damaged file
            raise UserError(f"checkpoint {self.path} is corrupt or unreadable: {err}") from None
        saved = json.loads(state.get("training", state.get("recipe", "{}")))
        differ = [k for k in self.FIXED if saved.get(k) != training.get(k)]
        if differ:
            raise UserError(
                f"cannot resume {self.path}: it was trained with "
                f"{ {k: saved.get(k) for k in differ} }, "
                f"this run asks for { {k: training.get(k) for k in differ} }"
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


def dataset_record(manifest: DatasetManifest) -> dict[str, Any]:
    """What a card keeps about one training dataset: its recipe, seed, size and shapes."""
    return {
        "recipe": manifest.recipe,
        "seed": manifest.seed,
        "experiments": manifest.experiments,
        "images_per_experiment": manifest.images_per_experiment,
        "input_shape": manifest.input_shape,
        "coeff_shape": manifest.coeff_shape,
        "image_shape": manifest.image_shape,
    }


def training_record(
    config: TrainConfig,
    manifests: list[DatasetManifest],
    model: torch.nn.Module,
    world: int,
    **seen: Any,
) -> dict[str, Any]:
    """What the card keeps about a run: the settings as used and what the run saw."""
    manifest = manifests[0]
    augment = (
        f"D4 frame symmetries ({group_size(manifest.vocabulary)} elements)"
        if config.augment
        else "none"
    )
    arch = getattr(model, "arch", {})
    more = [
        {"data": str(root), **dataset_record(m)} for root, m in zip(config.more_data, manifests[1:])
    ]
    return {
        "view": config.view,
        "data": str(config.data),
        "backbone": arch.get("backbone"),
        "arch": arch,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "optimizer": config.optimizer,
        "lr": config.peak_lr,
        "trunk_lr_scale": config.trunk_lr_scale if config.view == "joint" else 1.0,
        "weight_decay": config.weight_decay,
        "schedule": "one-cycle (15% warm-up, cosine decay)",
        "augment": augment,
        "pos_weight_max": MAX_POS_WEIGHT,
        "seed": config.seed,
        "val_fraction": config.val_fraction,
        **seen,
        "processes": world,
        "dataset": dataset_record(manifest),
        **({"more_data": more} if more else {}),
    }


def train(config: TrainConfig) -> ModelCard:
    """Train one view as configured; returns the best model's card (also in ``config.out``)."""
    from scattertag.data.dataset import EXPERIMENT_STRIDE, fold_shards, joined_shards

    rank, world = setup_distributed()
    torch.set_num_threads(config.threads or max(1, usable_cores() // world))
    torch.manual_seed(config.seed)
    run_dir = Path(config.out)
    roots = [Path(config.data), *map(Path, config.more_data)]
    manifests = read_matching_manifests(roots)
    manifest = manifests[0]
    train_shards, (test_shard,) = fold_shards(config.test_shard)
    data, experiments = joined_shards(roots, train_shards)
    # each dataset's own split, so a run on A B validates on the experiments of A that a run
    # on A alone does (a model trained on A and trained on here never validates on its own
    # training frames)
    val_experiments = np.concatenate(
        [
            i * EXPERIMENT_STRIDE
            + split_experiments(
                experiments[experiments // EXPERIMENT_STRIDE == i] % EXPERIMENT_STRIDE,
                config.val_fraction,
                config.seed,
            )
            for i in range(len(roots))
        ]
    )
    is_val = np.isin(experiments, val_experiments)
    keep_image = config.view != "coeff"
    size = item_bytes(
        manifest.input_shape or [1],
        manifest.coeff_shape or [1],
        len(manifest.vocabulary),
        keep_image,
    )
    train_set, val_set = (
        training_items(
            data,
            np.flatnonzero(rows).tolist(),
            size,
            config.workers,
            config.memory_mb * share,
            f"load {name}",
            keep_image,
        )
        for name, rows, share in (
            ("train", ~is_val, 1 - config.val_fraction),
            ("val", is_val, config.val_fraction),
        )
    )

    model, init_runs, fusion = initial_model(config, manifest, val_set)
    training = training_record(
        config,
        manifests,
        model,
        world,
        val_experiments=val_experiments.tolist(),
        train_shards=train_shards,
        test_shard=test_shard,
        train_images=len(train_set),
        val_images=len(val_set),
        init=init_runs,
        fusion_init=fusion,
    )
    sampler: DistributedSampler[int] = DistributedSampler(
        train_set, num_replicas=world, rank=rank, shuffle=True, seed=config.seed
    )
    loader = DataLoader(
        train_set,
        batch_size=config.batch_size,
        sampler=sampler,
        drop_last=len(train_set) // world > config.batch_size,
    )
    lr = config.peak_lr
    groups = parameter_groups(model, lr, training["trunk_lr_scale"])
    optimiser: torch.optim.Optimizer
    if config.optimizer == "adamw":
        optimiser = torch.optim.AdamW(groups, lr=lr, weight_decay=config.weight_decay)
    else:
        optimiser = torch.optim.SGD(
            groups, lr=lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay
        )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser,
        max_lr=[g["lr"] for g in groups],
        total_steps=config.epochs * len(loader),
        pct_start=0.15,
    )
    checkpoint = Checkpoint(run_dir)
    start_epoch, best = 0, -1.0
    if config.resume and checkpoint.path.is_file():
        start_epoch, best = checkpoint.load(model, optimiser, schedule, training)
    elif (run_dir / "model.json").exists() and not config.resume:
        raise UserError(
            f"{run_dir} already holds a trained model; use --resume to continue or another --out"
        )
    net = DistributedDataParallel(model) if world > 1 else model
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=positive_weights(manifests, train_shards))
    symmetries = group_size(manifest.vocabulary) if config.augment else 1
    cake = ViewSpec.from_dict(manifest.view_spec).is_cake
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        weights = sum(p.numel() for p in model.parameters()) / 1e6
        print(
            f"{config.view} view: {len(train_set)} train / {len(val_set)} val images "
            f"({len(val_experiments)} val experiments), test shard {test_shard}, "
            f"{world} process(es), {torch.get_num_threads()} threads, {weights:.2f} M weights"
        )
    card = None

    def validate(epoch: int, entry: dict) -> None:
        """Score the validation split after ``epoch``; keep the model if the best so far."""
        nonlocal best, card
        labels, scores = predict_scores(model, val_set, config.batch_size * 2, progress="validate")
        val_map = mean_average_precision(labels, scores)
        entry = {"epoch": epoch, **entry, "val_mAP": val_map}
        if val_map > best:
            best = val_map
            card = ModelCard(
                view=config.view,
                arch=training["arch"],
                backbone=training["backbone"],
                vocabulary=list(manifest.vocabulary),
                view_spec=manifest.view_spec,
                thresholds=tune_thresholds(labels, scores).tolist(),
                training=training,
                metrics={"val_mAP": val_map, "epoch": epoch},
            )
            save_model(model, card, run_dir)
            entry["best"] = True
        with open(run_dir / "metrics.jsonl", "a") as log:  # appended line by line, not replaced
            log.write(json.dumps(entry) + "\n")
        loss = f"loss {entry['train_loss']:.4f}, " if "train_loss" in entry else "before training: "
        speed = f", {entry['images_per_s']:.0f} images/s" if "images_per_s" in entry else ""
        mark = " (best)" if entry.get("best") else ""
        print(
            f"epoch {epoch}/{config.epochs}: {loss}val mAP {val_map:.4f}{mark}{speed}", flush=True
        )

    if config.view == "joint" and start_epoch == 0 and rank == 0:
        # the blended start is already a model: fine-tuning must beat it on validation to replace it
        validate(0, {})
    for epoch in range(start_epoch, config.epochs):
        sampler.set_epoch(epoch)
        generator = torch.Generator().manual_seed(config.seed * 1000 + epoch * world + rank)
        net.train()
        start, total, seen = time.perf_counter(), 0.0, 0
        bar = tqdm(
            loader, desc=f"epoch {epoch + 1}/{config.epochs}", disable=rank != 0, leave=False
        )
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
            checkpoint.save(model, optimiser, schedule, epoch, best, training)
        if world > 1:
            dist.barrier()
    if world > 1:
        dist.destroy_process_group()
    return card if card is not None else ModelCard.read(run_dir)


if __name__ == "__main__":  # torchrun -m scattertag.train ARGS: the arguments of scattertag train
    from scattertag.cli.train import main

    sys.exit(main())
