"""Scores on partly labelled frames: per-tag AP over the known labels, mAP, F1, ECE.

Labels are (n, T) with 1, 0 or NaN (unknown). For tag t only the frames whose label of t
is known count: AP is scikit-learn's definition (:func:`scattertag.evaluate.average_precision`
leaves NaN labels out), NaN when none of the known frames is positive. mAP is the mean AP
over the tags with at least one known positive. ECE is :mod:`scattertag.adapt.calibration`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scattertag.adapt.calibration import ece_table
from scattertag.evaluate import per_tag_ap


def score_labelled(
    labels: np.ndarray, probs: np.ndarray, vocabulary: list[str], thresholds: np.ndarray
) -> dict:
    """Summary (mAP, ECE overall and mean per tag, frames) and a per-tag table on known labels."""
    ap = per_tag_ap(labels, probs)
    ece, ece_all = ece_table(labels, probs)
    predicted = probs >= np.asarray(thresholds)[None, :]
    rows: list[dict[str, Any]] = []
    for t, tag in enumerate(vocabulary):
        known = np.isfinite(labels[:, t])
        truth = labels[known, t] > 0.5
        said = predicted[known, t]
        tp = int((said & truth).sum())
        denominator = int(said.sum() + truth.sum())
        rows.append(
            {
                "tag": tag,
                "positives": int(truth.sum()),
                "negatives": int((~truth).sum()),
                "unknown": int((~known).sum()),
                "AP": None if np.isnan(ap[t]) else float(ap[t]),
                "F1": 2 * tp / denominator if denominator else None,
                "ECE": None if np.isnan(ece[t]) else float(ece[t]),
                "threshold": float(thresholds[t]),
            }
        )
    with_ece = [r["ECE"] for r in rows if r["ECE"] is not None and r["positives"] > 0]
    return {
        "mAP": float(np.nanmean(ap)) if np.isfinite(ap).any() else None,
        "tags_scored": int(np.isfinite(ap).sum()),
        "ECE": None if np.isnan(ece_all) else ece_all,
        "ECE_mean_tag": float(np.mean(with_ece)) if with_ece else None,
        "images": int(labels.shape[0]),
        "per_tag": rows,
    }


def format_labelled(result: dict) -> str:
    """Fixed-width per-tag table (tags with at least one known label) and the summary line."""
    lines = [
        f"{'tag':<20} {'pos':>4} {'neg':>4} {'?':>4} {'AP':>6} {'F1':>6} {'ECE':>6} {'thr':>6}"
    ]
    show = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for r in result["per_tag"]:
        if r["positives"] + r["negatives"] == 0:
            continue
        lines.append(
            f"{r['tag']:<20} {r['positives']:>4} {r['negatives']:>4} {r['unknown']:>4} "
            f"{show(r['AP']):>6} {show(r['F1']):>6} {show(r['ECE']):>6} {r['threshold']:>6.3f}"
        )
    lines.append(
        f"mAP {show(result['mAP'])} over {result['tags_scored']} tags with positives; "
        f"ECE {show(result['ECE'])} (all known pairs), "
        f"{show(result['ECE_mean_tag'])} (mean over tags)"
        f"  ({result['images']} frames)"
    )
    return "\n".join(lines)
