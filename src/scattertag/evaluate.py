"""Score a trained tagger on a dataset's test shard (``scattertag evaluate``).

Metrics (the registry :data:`METRICS`):

* **AP** of one tag: scikit-learn's ``average_precision_score`` definition,
  AP = sum_i (R_i - R_{i-1}) P_i over the distinct score thresholds, highest first
  (no interpolation; tied scores form one threshold).
* **mAP**: mean of AP over the tags that have at least one positive in the test set.
* **F1** of each tag at the model card's per-tag threshold, which training tuned on its
  validation split (never on the test shard), so test F1 is an honest estimate;
  **mean_F1** averages it over the tags that have positives.
* **ECE**: expected calibration error over all (frame, tag) pairs, 10 equal-width
  probability bins (:mod:`scattertag.adapt.calibration`); per tag in the table.

Writes ``RUN/eval.json``, ``RUN/pr_curves.png``, ``RUN/ap_by_tag.png`` and
``RUN/reliability.png`` (the reliability diagram), stores the test
metrics in the model card and prints a table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from scattertag import plotting
from scattertag.adapt.calibration import ece_table, plot_reliability
from scattertag.data.manifest import DatasetManifest
from scattertag.io.files import write_json
from scattertag.models.card import ModelCard
from scattertag.models.checks import check_scores
from scattertag.models.io import check_compatible, load_model, pretrained_dir
from scattertag.models.symmetry import with_symmetries


def precision_recall(
    labels: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, threshold) at each distinct score, thresholds descending.

    labels, scores : (n,); labels that are NaN (unknown) are left out.
    """
    labels = np.asarray(labels, dtype=np.float64)
    known = ~np.isnan(labels)
    order = np.argsort(-scores[known], kind="mergesort")
    scores, labels = scores[known][order], labels[known][order]
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]  # last index of each tied group
    tp = np.cumsum(labels)[last]
    predicted = last + 1.0
    return tp / predicted, tp / max(tp[-1], 1.0), scores[last]


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """AP = sum (R_i - R_{i-1}) P_i (scikit-learn's definition); NaN labels are left out.

    NaN if no known label is positive.
    """
    labels, scores = np.asarray(labels).ravel(), np.asarray(scores, dtype=np.float64).ravel()
    if np.nansum(labels) == 0:
        return float("nan")
    precision, recall, _ = precision_recall(labels, scores)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def per_tag_ap(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(T,) AP of each tag of (n, T) labels and scores; NaN for tags without positives."""
    return np.array([average_precision(labels[:, t], scores[:, t]) for t in range(labels.shape[1])])


def mean_average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean AP over the tags that have positives; NaN if none has."""
    ap = per_tag_ap(labels, scores)
    return float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan")


def f1_scores(labels: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(T,) F1 of each tag predicting score >= threshold; NaN without positives and predictions."""
    predicted = scores >= np.asarray(thresholds)[None, :]
    truth = labels > 0.5
    tp = (predicted & truth).sum(0)
    denominator = predicted.sum(0) + truth.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2.0 * tp / denominator, np.nan)


def tune_thresholds(labels: np.ndarray, scores: np.ndarray, default: float = 0.5) -> np.ndarray:
    """(T,) per-tag threshold maximising F1 on (n, T) labels/scores; ``default`` if no positive."""
    thresholds = np.full(labels.shape[1], default)
    for t in range(labels.shape[1]):
        if labels[:, t].sum() == 0:
            continue
        precision, recall, cut = precision_recall(labels[:, t], scores[:, t])
        with np.errstate(invalid="ignore"):
            f1 = 2 * precision * recall / (precision + recall)
        thresholds[t] = cut[int(np.nanargmax(f1))]
    return thresholds


#: Summary metrics: name -> f(labels (n, T), scores (n, T), thresholds (T,)) -> float.
METRICS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {
    "mAP": lambda y, s, t: mean_average_precision(y, s),
    "mean_F1": lambda y, s, t: float(
        np.nanmean(np.where(y.sum(0) > 0, f1_scores(y, s, t), np.nan))
    ),
    "ECE": lambda y, s, t: ece_table(y, s)[1],
}


@torch.no_grad()
def predict_scores(
    model: torch.nn.Module,
    dataset: Dataset,
    batch_size: int = 64,
    workers: int = 0,
    progress: str | None = None,
    logits: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(labels (n, T), sigmoid probabilities (n, T) or logits if ``logits``) over ``dataset``."""
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    labels, scores = [], []
    squash = (lambda z: z) if logits else torch.sigmoid
    for batch in tqdm(loader, desc=progress, disable=progress is None, leave=False):
        scores.append(squash(model(batch["image"], batch["coeff"])).numpy())
        labels.append(batch["labels"].numpy())
    return np.concatenate(labels), check_scores(np.concatenate(scores), "evaluation")


def evaluate(
    labels: np.ndarray, scores: np.ndarray, vocabulary: list[str], thresholds: np.ndarray
) -> dict:
    """Summary metrics and a per-tag table (positives, AP, F1, precision, recall at threshold)."""
    check_scores(scores, "evaluate")
    ap = per_tag_ap(labels, scores)
    f1 = f1_scores(labels, scores, thresholds)
    predicted = scores >= thresholds[None, :]
    truth = labels > 0.5
    ece = ece_table(labels, scores)[0]
    rows = []
    for t, tag in enumerate(vocabulary):
        tp = int((predicted[:, t] & truth[:, t]).sum())
        rows.append(
            {
                "tag": tag,
                "positives": int(truth[:, t].sum()),
                "AP": None if np.isnan(ap[t]) else float(ap[t]),
                "F1": None if np.isnan(f1[t]) else float(f1[t]),
                "threshold": float(thresholds[t]),
                "precision": tp / max(int(predicted[:, t].sum()), 1),
                "recall": tp / max(int(truth[:, t].sum()), 1),
                "ECE": float(ece[t]),
            }
        )
    summary = {name: fn(labels, scores, thresholds) for name, fn in METRICS.items()}
    return {**summary, "images": int(labels.shape[0]), "per_tag": rows}


def format_table(result: dict) -> str:
    """The per-tag table and the summary as fixed-width text."""
    lines = [f"{'tag':<20} {'pos':>5} {'AP':>6} {'F1':>6} {'thr':>6}"]
    for row in result["per_tag"]:
        ap = "-" if row["AP"] is None else f"{row['AP']:.3f}"
        f1 = "-" if row["F1"] is None else f"{row['F1']:.3f}"
        lines.append(
            f"{row['tag']:<20} {row['positives']:>5} {ap:>6} {f1:>6} {row['threshold']:>6.3f}"
        )
    lines.append(
        " ".join(f"{name} {result[name]:.4f}" for name in METRICS)
        + f"  ({result['images']} images)"
    )
    return "\n".join(lines)


def plot_pr_curves(
    labels: np.ndarray, scores: np.ndarray, vocabulary: list[str], path: Path
) -> Path:
    """One precision-recall panel per tag, titled with its AP."""
    fig, axes = plotting.montage_axes(len(vocabulary), columns=6, panel=2.2)
    for t, (ax, tag) in enumerate(zip(axes, vocabulary)):
        if np.nansum(labels[:, t]) > 0:
            precision, recall, _ = precision_recall(labels[:, t], scores[:, t])
            ax.step(np.r_[0.0, recall], np.r_[1.0, precision], where="post")
            ax.set_title(
                f"{tag}\nAP {average_precision(labels[:, t], scores[:, t]):.3f}", fontsize=7
            )
        else:
            ax.set_title(f"{tag}\n(no positives)", fontsize=7)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=6)
        ax.label_outer()
    fig.supxlabel("recall", fontsize=8)
    fig.supylabel("precision", fontsize=8)
    return plotting.save(fig, path)


def plot_ap_bars(result: dict, path: Path, title: str) -> Path:
    """Horizontal bar chart of per-tag AP with the mAP as a vertical line."""
    rows = [r for r in result["per_tag"] if r["AP"] is not None]
    fig = plotting.new_figure(figsize=(6, 0.28 * len(rows) + 1.2))
    ax = fig.subplots()
    ax.barh(
        [f"{r['tag']} ({r['positives']})" for r in rows], [r["AP"] for r in rows], color="tab:blue"
    )
    ax.axvline(result["mAP"], color="k", ls="--", lw=1, label=f"mAP {result['mAP']:.3f}")
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("average precision (test positives in brackets)")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    return plotting.save(fig, path)


@dataclass(frozen=True)
class EvaluateConfig:
    """Score the run ``model`` on shard(s) ``test_shard`` of dataset ``data`` (None: the run's).

    out : folder for eval.json and the plots (None: the run's own folder, whose card also
        takes the test metrics; for the shipped tagger ``eval_<dataset name>``, since the
        package's own folder is never written).
    symmetries : logits averaged over that many symmetries of the frame (1, 2, 4 or 8;
        :mod:`scattertag.models.symmetry`); the card takes only the plain model's metrics.
    """

    data: Path
    model: Path
    test_shard: int | list[int] | None = None
    batch_size: int = 64
    workers: int = 0
    out: Path | None = None
    symmetries: int = 1


def report_folder(config: EvaluateConfig) -> tuple[Path, bool]:
    """(where eval.json and the plots go, whether the run's card takes the test metrics)."""
    model_dir = Path(config.model)
    shipped = model_dir.resolve() == pretrained_dir().resolve()
    out = Path(config.out) if config.out else None
    if out is None:
        out = Path(f"eval_{Path(config.data).name}") if shipped else model_dir
    own = out.resolve() == model_dir.resolve()
    return out, not shipped and own and config.symmetries == 1


def evaluate_run(config: EvaluateConfig) -> dict:
    """Score the run; write eval.json, the PNGs and (its own folder) the card's test metrics."""
    from scattertag.data import ShardDataset

    model_dir, data = Path(config.model), Path(config.data)
    model, card = load_model(model_dir)
    averaged = with_symmetries(model, card, config.symmetries)
    manifest = DatasetManifest.read(data)
    check_compatible(card, manifest, str(model_dir), str(data))
    from scattertag.data import fold_shards

    given = card.training.get("test_shard", 9) if config.test_shard is None else config.test_shard
    shards = sorted({fold_shards(int(k))[1][0] for k in np.atleast_1d(given)})  # validated
    shard: int | list[int] = shards[0] if len(shards) == 1 else shards
    start = time.perf_counter()
    labels, scores = predict_scores(
        averaged,
        ShardDataset(data, shards),
        config.batch_size,
        config.workers,
        progress="evaluate",
    )
    vocabulary = list(card.vocabulary)
    result = evaluate(labels, scores, vocabulary, np.asarray(card.thresholds, dtype=np.float64))
    result.update(
        model=str(model_dir),
        data=str(data),
        test_shard=shard,
        view=card.view,
        backbone=card.backbone,
        symmetries=config.symmetries,
        seconds=round(time.perf_counter() - start, 2),
    )
    out, into_card = report_folder(config)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "eval.json", result)
    plot_pr_curves(labels, scores, vocabulary, out / "pr_curves.png")
    name = f"test shard{'s' if len(shards) > 1 else ''} {shard}"
    title = f"{name} of {data.name} ({len(labels)} frames)"
    plot_reliability(labels, {card.view: scores}, out / "reliability.png", title)
    plot_ap_bars(result, out / "ap_by_tag.png", f"{card.view} view, {name} of {data.name}")
    result["out"] = str(out)
    if not into_card:
        return result
    card = ModelCard.read(model_dir)
    metrics = {
        **card.metrics,
        "test": {k: result[k] for k in ("mAP", "mean_F1", "images", "test_shard")},
        "test_AP": {r["tag"]: r["AP"] for r in result["per_tag"]},
    }
    replace(card, metrics=metrics).write(model_dir)
    return result
