"""Fit per-tag calibration of a trained tagger on a built dataset (``scattertag calibrate``).

    scattertag calibrate --model RUN --data DIR --out CALIBRATED [--method platt|temperature]

The map is fitted on the dataset's shards other than the test shard (for a model trained
on another dataset, all of them are unseen frames), folded into the network's head
(:mod:`scattertag.adapt.calibration`) and recorded in the card; thresholds are re-chosen
for F1 on the calibrated probabilities of the fitting shards (``thresholds="tune"``) or the
card's own are mapped through the calibration (``"keep"``: every tag decision stays as it
was, now stated on the calibrated scale). The test shard then gives
the ECE before and after (per tag and overall) and ``reliability.png``. Calibration is
monotone per tag, so AP and mAP do not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from scattertag.adapt.calibration import (
    card_calibration,
    ece_table,
    fit_calibration,
    fold_into_head,
    plot_reliability,
    sigmoid,
)
from scattertag.adapt.evaluate_labels import load_tagger
from scattertag.errors import UserError
from scattertag.evaluate import predict_scores, tune_thresholds
from scattertag.io.files import write_json

#: How ``calibrate`` sets the thresholds on the calibrated scale.
THRESHOLDS = ("tune", "keep")


def calibrate_on_dataset(
    model_dir: str | Path | None,
    data: str | Path | Sequence[str | Path],
    out: str | Path,
    method: str = "platt",
    test_shards: tuple[int, ...] = (9,),
    batch_size: int = 64,
    progress: bool = False,
    thresholds: str = "tune",
) -> dict:
    """Calibrate ``model_dir`` on the shards of ``data`` (one dataset directory or several
    with the same views, taken together) not in ``test_shards``; save to ``out``.

    ``thresholds``: "tune" (F1-best on the fitting shards) or "keep" (the card's, mapped).
    """
    if thresholds not in THRESHOLDS:
        raise UserError(f"thresholds must be one of {', '.join(THRESHOLDS)}, got {thresholds!r}")
    from scattertag.data.dataset import fold_shards, joined_shards
    from scattertag.data.manifest import NUM_SHARDS, read_matching_manifests
    from scattertag.models.io import check_compatible, save_model

    roots = [Path(data)] if isinstance(data, (str, Path)) else [Path(d) for d in data]
    names = " + ".join(map(str, roots))
    model, card = load_tagger(model_dir)
    manifests = read_matching_manifests(roots)
    try:
        check_compatible(card, manifests[0], str(model_dir or "shipped"), str(roots[0]))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    tests = sorted({fold_shards(k)[1][0] for k in test_shards})  # validated
    fit_shards = [k for k in range(NUM_SHARDS) if k not in tests]
    if not fit_shards:
        raise UserError("no shard left to fit on: --test-shards names all ten")
    fit_labels, fit_logits = predict_scores(
        model,
        joined_shards(roots, fit_shards)[0],
        batch_size,
        progress="fit" if progress else None,
        logits=True,
    )
    test_labels, test_logits = predict_scores(
        model,
        joined_shards(roots, tests)[0],
        batch_size,
        progress="test" if progress else None,
        logits=True,
    )
    sources = [
        {
            "seed": m.seed,
            "experiments": m.experiments,
            "images_per_experiment": m.images_per_experiment,
            "detectors": m.recipe.get("detectors", "reference"),
        }
        for m in manifests
    ]
    fit = fit_calibration(fit_logits.astype(np.float64), fit_labels, method)
    fold_into_head(model, fit)
    calibration = {
        **card_calibration(card).then(fit).to_dict(),
        "fitted_on": f"{names} shards {fit_shards} ({len(fit_labels)} frames)",
        "dataset": sources[0],
        **({"more_data": sources[1:]} if len(sources) > 1 else {}),
    }
    mapped = fit.probability(np.asarray(card.thresholds, dtype=np.float64)[None, :])[0]
    tuned = mapped
    if thresholds == "tune":
        has = fit_labels.sum(0) > 0
        tuned = np.where(has, tune_thresholds(fit_labels, sigmoid(fit(fit_logits))), mapped)
    card = replace(card, calibration=calibration, thresholds=tuned.tolist())
    before, after = sigmoid(test_logits), sigmoid(fit(test_logits))
    (ece_before, all_before), (ece_after, all_after) = (
        ece_table(test_labels, p) for p in (before, after)
    )
    vocabulary = list(card.vocabulary)
    result = {
        "model": str(model_dir or "shipped"),
        "data": names,
        "method": method,
        "thresholds": thresholds,
        "fit_shards": fit_shards,
        "test_shards": tests,
        "fit_frames": len(fit_labels),
        "test_frames": len(test_labels),
        "ECE_before": all_before,
        "ECE_after": all_after,
        "ECE_mean_tag_before": float(np.nanmean(ece_before)),
        "ECE_mean_tag_after": float(np.nanmean(ece_after)),
        "per_tag": [
            {
                "tag": tag,
                "scale": float(fit.scale[t]),
                "bias": float(fit.bias[t]),
                "ECE_before": float(ece_before[t]),
                "ECE_after": float(ece_after[t]),
                "threshold": card.thresholds[t],
            }
            for t, tag in enumerate(vocabulary)
        ],
    }
    out = Path(out)
    save_model(model, card, out)
    write_json(out / "calibrate.json", result)
    plot_reliability(
        test_labels,
        {"before": before, "after": after},
        out / "reliability.png",
        f"test shards {tests} of {' + '.join(r.name for r in roots)} ({len(test_labels)} frames)",
    )
    return result


def format_calibration(result: dict) -> str:
    """Per-tag scale, bias and ECE before/after, and the summary line."""
    lines = [f"{'tag':<20} {'scale':>6} {'bias':>6} {'ECE before':>10} {'after':>6}"]
    lines += [
        f"{r['tag']:<20} {r['scale']:>6.3f} {r['bias']:>6.2f} "
        f"{r['ECE_before']:>10.4f} {r['ECE_after']:>6.4f}"
        for r in result["per_tag"]
    ]
    lines.append(
        f"test shards {result['test_shards']} ({result['test_frames']} frames): ECE "
        f"{result['ECE_before']:.4f} -> {result['ECE_after']:.4f} (all pairs), "
        f"{result['ECE_mean_tag_before']:.4f} -> {result['ECE_mean_tag_after']:.4f} "
        "(mean over tags)"
    )
    return "\n".join(lines)
