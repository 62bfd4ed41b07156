"""An honest estimate of the fine-tuning gain: grouped k-fold cross-validation.

The labelled frames are split into K folds of whole groups (one sample or series never
sits on both sides). For each fold the base model is fine-tuned on the other folds (with
its own held-out part for early stopping and recalibration) and both models score the
fold. The held-out probabilities of all folds are pooled, so every frame is scored once by
a model that never saw it, and per-tag AP, mAP and ECE are compared before and after.
"""

from __future__ import annotations

import numpy as np

from scattertag.adapt.calibration import sigmoid
from scattertag.adapt.finetune import (
    FinetuneConfig,
    Training,
    finetune_model,
    logits_of,
    split_groups,
)
from scattertag.adapt.frames import LabelledFrames, TensorItems
from scattertag.adapt.scoring import score_labelled
from scattertag.errors import UserError
from scattertag.evaluate import mean_average_precision
from scattertag.models.card import ModelCard
from scattertag.models.taggers import Tagger


def group_folds(groups: list[str], k: int) -> np.ndarray:
    """(n,) fold index of each frame: groups, largest first, each to the smallest fold so far."""
    names, sizes = np.unique(np.asarray(groups), return_counts=True)
    if not 2 <= k <= len(names):
        raise UserError(f"--folds must be in [2, {len(names)}] (the number of groups), got {k}")
    load = np.zeros(k, int)
    fold_of = {}
    for i in sorted(range(len(names)), key=lambda i: (-sizes[i], names[i])):
        f = int(np.argmin(load))
        fold_of[names[i]] = f
        load[f] += sizes[i]
    return np.array([fold_of[g] for g in groups])


def cross_validate(
    model: Tagger,
    card: ModelCard,
    variants: list[LabelledFrames],
    replay: TensorItems | None,
    config: FinetuneConfig,
    k: int,
    progress: bool = False,
) -> dict:
    """Per-tag AP, mAP and ECE before/after fine-tuning, pooled over K grouped held-out folds."""
    frames = variants[0]
    fold = group_folds(frames.groups, k)
    vocabulary = list(card.vocabulary)
    before = sigmoid(logits_of(model, frames.image, frames.coeff))
    after = np.full_like(before, np.nan)
    per_fold = []
    for f in range(k):
        test, train = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
        train_groups = [frames.groups[i] for i in train]
        held = split_groups(train_groups, config.val_fraction, config.seed + f)
        training = Training(
            [v.subset(train[~held]) for v in variants], frames.subset(train[held]), replay
        )
        tuned, _, log = finetune_model(model, card, training, config, progress)
        after[test] = sigmoid(logits_of(tuned, frames.image[test], frames.coeff[test]))
        labels = frames.labels[test]
        per_fold.append(
            {
                "fold": f,
                "groups": sorted({frames.groups[i] for i in test}),
                "frames": len(test),
                "mAP_before": _nan_none(mean_average_precision(labels, before[test])),
                "mAP_after": _nan_none(mean_average_precision(labels, after[test])),
                "best_epoch": log["best_epoch"],
                "seconds": log["seconds"],
            }
        )
    thresholds = np.asarray(card.thresholds)
    scored = {
        name: score_labelled(frames.labels, p, vocabulary, thresholds)
        for name, p in (("before", before), ("after", after))
    }
    per_tag = [
        {"tag": b["tag"], "positives": b["positives"], "AP_before": b["AP"], "AP_after": a["AP"]}
        for b, a in zip(scored["before"]["per_tag"], scored["after"]["per_tag"])
        if b["AP"] is not None
    ]
    return {
        "folds": k,
        "frames": len(frames),
        "mAP_before": scored["before"]["mAP"],
        "mAP_after": scored["after"]["mAP"],
        "ECE_before": scored["before"]["ECE"],
        "ECE_after": scored["after"]["ECE"],
        "per_tag": per_tag,
        "per_fold": per_fold,
    }


def _nan_none(x: float) -> float | None:
    """None for NaN (JSON has no NaN)."""
    return None if np.isnan(x) else float(x)


def format_folds(result: dict) -> str:
    """Per-tag AP before/after and the pooled summary as text."""
    show = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [f"{'tag':<20} {'pos':>4} {'AP before':>10} {'AP after':>10}"]
    lines += [
        f"{r['tag']:<20} {r['positives']:>4} {show(r['AP_before']):>10} {show(r['AP_after']):>10}"
        for r in result["per_tag"]
    ]
    lines.append(
        f"held-out mAP {show(result['mAP_before'])} -> {show(result['mAP_after'])}, "
        f"ECE {show(result['ECE_before'])} -> {show(result['ECE_after'])} "
        f"({result['frames']} frames, {result['folds']} grouped folds)"
    )
    lines += [
        f"  fold {f['fold']} ({', '.join(f['groups'])}; {f['frames']} frames): "
        f"mAP {show(f['mAP_before'])} -> {show(f['mAP_after'])}, best epoch {f['best_epoch']}"
        for f in result["per_fold"]
    ]
    return "\n".join(lines)
