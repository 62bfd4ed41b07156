"""``scattertag evaluate --labels labels.tsv``: score a tagger on labelled detector files.

Writes to ``out``: ``eval_labels.json`` (per-tag AP, F1, ECE on the known labels, mAP,
skipped rows), ``pr_curves.png``, ``ap_by_tag.png`` and ``reliability.png`` (the network's
probabilities and, for a calibrated model, the uncalibrated ones it started from).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scattertag.adapt.calibration import card_calibration, plot_reliability, sigmoid
from scattertag.adapt.frames import LabelledFrames, labelled_frames
from scattertag.adapt.labels import read_labels
from scattertag.adapt.scoring import score_labelled
from scattertag.errors import UserError
from scattertag.evaluate import plot_ap_bars, plot_pr_curves, predict_scores
from scattertag.io.files import write_json


class ModelLoadError(UserError):
    """A model folder that cannot be loaded (missing, corrupt, or not a tagger)."""


def load_tagger(model_dir: str | Path | None):
    """(model, card) of ``model_dir`` (None: the shipped tagger); ModelLoadError naming it."""
    from scattertag.models.io import load_model, pretrained_dir

    name = pretrained_dir() if model_dir is None else Path(model_dir)
    try:
        return load_model(name)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ModelLoadError(f"model {name} does not load: {exc}") from None


def frame_logits(model, frames: LabelledFrames, batch_size: int = 32) -> np.ndarray:
    """(n, T) logits of ``model`` on labelled frames."""
    _, logits = predict_scores(model, frames.dataset(), batch_size, logits=True)
    return logits.astype(np.float64)


def evaluate_labels(
    labels: str | Path,
    model_dir: str | Path | None = None,
    centres: str | Path | None = None,
    out: str | Path = "eval_labels",
    progress: bool = False,
    cache: str | Path | None = None,
    symmetries: int = 1,
) -> dict:
    """Score ``model_dir`` on the labelled files of ``labels``; write JSON and PNGs to ``out``.

    ``symmetries``: logits averaged over that many symmetries of the frame (1, 2, 4, 8).
    """
    from scattertag.features.views import ViewSpec
    from scattertag.models.symmetry import with_symmetries

    model, card = load_tagger(model_dir)
    model = with_symmetries(model, card, symmetries)
    vocabulary = list(card.vocabulary)

    table = read_labels(labels, centres)
    spec = ViewSpec.from_dict(card.view_spec)
    frames = labelled_frames(table, vocabulary, spec, progress, cache)
    logits = frame_logits(model, frames)
    probs = sigmoid(logits)
    result = score_labelled(
        frames.labels, probs, vocabulary, np.asarray(card.thresholds, dtype=np.float64)
    )
    result.update(
        model=str(model_dir or "shipped"),
        labels=str(labels),
        labels_sha256=table.sha256,
        centres=None if centres is None else str(centres),
        symmetries=symmetries,
        skipped=frames.skipped,
        frames=frames.sources,
        scores={s: dict(zip(vocabulary, map(float, p))) for s, p in zip(frames.sources, probs)},
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "eval_labels.json", result)
    present = [t for t in range(len(vocabulary)) if np.isfinite(frames.labels[:, t]).any()]
    plot_pr_curves(
        frames.labels[:, present],
        probs[:, present],
        [vocabulary[t] for t in present],
        out / "pr_curves.png",
    )
    plot_ap_bars(result, out / "ap_by_tag.png", f"{Path(labels).name}: {len(frames)} frames")
    curves = {"model": probs}
    calibration = card_calibration(card)
    if calibration.method != "identity":
        raw = (logits - calibration.bias[None, :]) / calibration.scale[None, :]
        curves = {"uncalibrated": sigmoid(raw), "calibrated": probs}
    plot_reliability(frames.labels, curves, out / "reliability.png", f"{Path(labels).name}")
    return result
