"""Calibration: ECE definition, temperature/Platt fits, folding into the head, composition."""

import json

import numpy as np
import pytest
import torch

from scattertag.adapt.calibration import (
    Calibration,
    card_calibration,
    expected_calibration_error,
    fit_calibration,
    fold_into_head,
    sigmoid,
)
from scattertag.models import load_model


def overconfident(n=2000, tags=3, seed=0):
    """Labels drawn from sigmoid(z) and logits reported as 3 z + 1 (too sharp, shifted)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, (n, tags))
    labels = (rng.random((n, tags)) < sigmoid(z)).astype(float)
    return 3 * z + 1, labels


def test_ece_known_values():
    labels = np.array([1.0, 0.0, 1.0, 0.0])
    # bins p=0.05 and p=0.95, each 1 of 2 positive: ECE = 0.45
    assert expected_calibration_error(labels, np.array([0.05, 0.05, 0.95, 0.95])) == pytest.approx(
        0.45
    )
    assert expected_calibration_error(labels, np.array([0.5] * 4)) == pytest.approx(0.0)
    # unknown labels are left out
    with_unknown = np.array([1.0, np.nan, 0.0])
    assert expected_calibration_error(with_unknown, np.array([0.95, 0.3, 0.05])) == pytest.approx(
        0.05
    )


@pytest.mark.parametrize("method", ["temperature", "platt"])
def test_fit_lowers_ece(method):
    logits, labels = overconfident()
    fit = fit_calibration(logits, labels, method)
    before = expected_calibration_error(labels, sigmoid(logits))
    after = expected_calibration_error(labels, sigmoid(fit(logits)))
    assert after < before / 2
    if method == "platt":  # the true map is z = (logit - 1) / 3
        assert fit.scale == pytest.approx(np.full(3, 1 / 3), rel=0.15)
        assert fit.bias == pytest.approx(np.full(3, -1 / 3), abs=0.15)
    else:
        assert np.all(fit.bias == 0) and np.all(fit.scale < 0.6)


def test_tags_without_both_classes_stay_identity():
    logits, labels = overconfident(200, 2)
    labels[:, 1] = 0.0
    labels[:50, 0] = np.nan
    fit = fit_calibration(logits, labels, "platt")
    assert fit.scale[1] == 1.0 and fit.bias[1] == 0.0 and fit.scale[0] != 1.0


def test_fold_into_head_and_compose(model_dir):
    model, card = load_model(model_dir)
    image = torch.rand(2, 4, 64, 64)  # the tiny model's cake
    coeff = torch.rand(2, 3, 5, 6)
    with torch.no_grad():
        before = model(image, coeff).double().numpy()
    tags = before.shape[1]
    first = Calibration(np.linspace(0.5, 2, tags), np.linspace(-1, 1, tags), "platt")
    second = Calibration(np.full(tags, 0.5), np.zeros(tags), "temperature")
    fold_into_head(fold_into_head(model, first), second)
    with torch.no_grad():
        after = model(image, coeff).double().numpy()
    assert after == pytest.approx(first.then(second)(before), abs=1e-4)
    restored = Calibration.from_dict(first.then(second).to_dict())
    assert restored(before) == pytest.approx(after, abs=1e-4)
    assert card_calibration(card).method == "identity"
    p = np.array([[0.2] * tags])
    assert first.probability(p) == pytest.approx(sigmoid(first(np.log(p / (1 - p)))))


def test_calibrate_command_on_a_dataset(tmp_path, capsys):
    from conftest import SMALL_SPEC, build_small
    from scattertag.adapt.calibrate import calibrate_on_dataset
    from scattertag.cli import main
    from scattertag.data import ShardDataset
    from scattertag.evaluate import mean_average_precision, predict_scores
    from scattertag.models import CoeffTagger, save_model
    from scattertag.models.card import ModelCard

    manifest = build_small(tmp_path / "data")
    model = CoeffTagger(len(manifest.vocabulary), SMALL_SPEC.coeff_shape, width=4)
    card = ModelCard(
        view=model.view,
        arch=model.arch,
        backbone=None,
        vocabulary=manifest.vocabulary,
        view_spec=SMALL_SPEC.to_dict(),
        thresholds=[0.5] * len(manifest.vocabulary),
    )
    save_model(model.eval(), card, tmp_path / "base")
    argv = ["calibrate", "--model", str(tmp_path / "base"), "--data", str(tmp_path / "data")]
    assert main([*argv, "--out", str(tmp_path / "cal"), "--quiet"]) == 0
    assert "ECE" in capsys.readouterr().out
    calibrated = ModelCard.read(tmp_path / "cal")
    assert calibrated.calibration["method"] == "platt"
    assert "shards [0, 1, 2, 3, 4, 5, 6, 7, 8]" in calibrated.calibration["fitted_on"]
    assert (tmp_path / "cal" / "reliability.png").stat().st_size > 0
    # a monotone map per tag: the ranking, hence AP, is unchanged on the test shard
    test = ShardDataset(tmp_path / "data", [9])
    (labels, before), (_, after) = (
        predict_scores(load_model(d)[0], test) for d in (tmp_path / "base", tmp_path / "cal")
    )
    assert mean_average_precision(labels, after) == pytest.approx(
        mean_average_precision(labels, before), abs=1e-6
    )
    # --thresholds keep: the card's thresholds mapped through the map, every decision unchanged
    assert main([*argv, "--out", str(tmp_path / "keep"), "--thresholds", "keep", "--quiet"]) == 0
    kept, kept_card = load_model(tmp_path / "keep")
    _, probs = predict_scores(kept, test)
    assert kept_card.thresholds != card.thresholds
    np.testing.assert_array_equal(probs >= np.asarray(kept_card.thresholds), before >= 0.5)
    with pytest.raises(ValueError, match="mismatch"):
        calibrate_on_dataset(None, tmp_path / "data", tmp_path / "x")
    # --data A B: fitted on the fitting shards of both, scored on both test shards
    build_small(tmp_path / "more", seed=4)
    both = ["--data", str(tmp_path / "data"), str(tmp_path / "more")]
    argv = ["calibrate", "--model", str(tmp_path / "base"), *both, "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "both")]) == 0
    result = json.loads((tmp_path / "both" / "calibrate.json").read_text())
    assert result["fit_frames"] == 2 * len(ShardDataset(tmp_path / "data", list(range(9))))
    assert result["test_frames"] == 2 * len(test)
    calibration = ModelCard.read(tmp_path / "both").calibration
    assert calibration["dataset"]["seed"] == 3 and calibration["more_data"][0]["seed"] == 4


def test_evaluate_reports_ece():
    from scattertag.evaluate import evaluate

    logits, labels = overconfident(500, 3)
    probs = sigmoid(logits)
    result = evaluate(labels, probs, ["a", "b", "c"], np.full(3, 0.5))
    assert result["ECE"] == pytest.approx(expected_calibration_error(labels, probs))
    assert result["per_tag"][1]["ECE"] == pytest.approx(
        expected_calibration_error(labels[:, 1], probs[:, 1])
    )
