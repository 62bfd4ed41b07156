"""Adapt a tagger to labelled frames and write a normal model folder (``scattertag finetune``).

    scattertag finetune --labels labels.tsv [--centres centres.tsv] [--model BASE] --out DIR
                        [--update head|last|all] [--replay simulate|DATASET|none]
                        [--folds K]

DIR gets ``model.safetensors`` + ``model.json`` (usable by predict, evaluate and the
service; the card records the base model and its checksum, the labels file's checksum
and the recipe) and ``finetune.json`` (epochs, held-out scores, and with ``--folds`` the
grouped cross-validation estimate of the gain).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from scattertag.adapt.evaluate_labels import load_tagger
from scattertag.adapt.exposure import resample_exposure
from scattertag.adapt.finetune import (
    FinetuneConfig,
    Training,
    finetune_model,
    held_out_scores,
    split_groups,
)
from scattertag.adapt.folds import cross_validate
from scattertag.adapt.frames import labelled_variants
from scattertag.adapt.labels import read_labels
from scattertag.adapt.replay import replay_from_dataset, replay_from_simulator
from scattertag.io.files import sha256 as file_sha256
from scattertag.io.files import write_json
from scattertag.models.card import ModelCard


def load_replay(source: str, card: ModelCard, count: int, seed: int, progress: bool):
    """Replay frames: 'simulate', 'none', or a built dataset folder."""
    if source == "none" or count == 0:
        return None
    if source == "simulate":
        return replay_from_simulator(card, count, seed, progress=progress)
    return replay_from_dataset(source, card, count, seed)


def finetune(
    labels: str | Path,
    out: str | Path,
    model: str | Path | None = None,
    centres: str | Path | None = None,
    config: FinetuneConfig | None = None,
    replay: str = "simulate",
    replay_frames: int = 64,
    folds: int = 0,
    progress: bool = False,
    cache: str | Path | None = None,
) -> dict:
    """Fine-tune ``model`` (None: the shipped tagger) on ``labels``; write the model to ``out``.

    Returns the report written to ``out/finetune.json``.
    """
    from scattertag.features.views import ViewSpec
    from scattertag.models.io import WEIGHTS, pretrained_dir, save_model

    config = config or FinetuneConfig()
    base_dir = pretrained_dir() if model is None else Path(model)
    base, card = load_tagger(base_dir)
    table = read_labels(labels, centres)
    variants = labelled_variants(
        table,
        list(card.vocabulary),
        ViewSpec.from_dict(card.view_spec),
        copies=config.exposure_copies,
        counts_map=resample_exposure,
        seed=config.seed,
        progress=progress,
        cache=cache,
    )
    frames = variants[0]
    replay_items = load_replay(replay, card, replay_frames, config.seed, progress)
    report: dict = {
        "labels": str(labels),
        "frames": len(frames),
        "skipped": frames.skipped,
        "config": asdict(config),
    }
    if folds:
        report["cross_validation"] = cross_validate(
            base, card, variants, replay_items, config, folds, progress
        )
    held = split_groups(frames.groups, config.val_fraction, config.seed)
    held_out = frames.subset(held)
    training = Training([v.subset(~held) for v in variants], held_out, replay_items)
    before = held_out_scores(base, held_out, card)
    tuned, new_card, log = finetune_model(base, card, training, config, progress)
    after = held_out_scores(tuned, held_out, new_card)
    training_record = {
        "finetune": {
            **asdict(config),
            "base_model": str(base_dir),
            "base_model_sha256": file_sha256(base_dir / WEIGHTS),
            "labels": str(labels),
            "labels_sha256": table.sha256,
            "centres": None if centres is None else str(centres),
            "frames": int((~held).sum()),
            "held_out_frames": int(held.sum()),
            "held_out_groups": sorted({frames.groups[i] for i in np.flatnonzero(held)}),
            "replay": replay,
            "replay_frames": 0 if replay_items is None else len(replay_items),
            "augment": "D4 about the beam centre; Poisson thinning and intensity scaling "
            f"({config.exposure_copies} exposure variants per frame)",
            "best_epoch": log["best_epoch"],
            "epochs_run": log["epochs_run"],
        },
        "base": card.training,
    }
    metrics = {
        "held_out_before": {k: before[k] for k in ("mAP", "ECE", "images")},
        "held_out_after": {k: after[k] for k in ("mAP", "ECE", "images")},
    }
    save_model(tuned, replace(new_card, training=training_record, metrics=metrics), out)
    report.update(
        held_out_before=before,
        held_out_after=after,
        training=log,
        model=str(out),
    )
    write_json(Path(out) / "finetune.json", report)
    return report
