"""Evaluation: average precision (scikit-learn's definition), thresholds, the evaluate command."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from conftest import make_dataset, train
from scattertag.cli import main as cli_main
from scattertag.evaluate import (
    average_precision,
    f1_scores,
    mean_average_precision,
    per_tag_ap,
    tune_thresholds,
)


def test_average_precision_known_values():
    # scikit-learn's documented example: average_precision_score -> 0.8333...
    assert average_precision(
        np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    ) == pytest.approx(5 / 6)
    # ties form one threshold: P = 3/4 at R = 1 after P = 1 at R = 1/3 -> 1/3 + 2/3 * 3/4
    assert average_precision(
        np.array([1, 0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.2, 0.9])
    ) == pytest.approx(5 / 6)
    assert average_precision(np.array([1, 1, 0]), np.array([0.9, 0.8, 0.1])) == 1.0
    assert np.isnan(average_precision(np.zeros(4), np.arange(4.0)))


def test_average_precision_is_mean_precision_at_the_positives():
    """Without ties AP equals the mean, over positives, of the precision at each positive's rank."""
    rng = np.random.default_rng(0)
    labels, scores = rng.random(300) < 0.2, rng.random(300)
    rank = np.argsort(np.argsort(-scores)) + 1
    hits = np.array([np.sum(labels & (rank <= r)) for r in rank[labels]])
    assert average_precision(labels, scores) == pytest.approx(np.mean(hits / rank[labels]))
    # a ranking metric: any strictly increasing map of the scores leaves it unchanged
    assert average_precision(labels, np.log(scores) * 7 + 3) == pytest.approx(
        average_precision(labels, scores)
    )


def test_map_skips_tags_without_positives():
    labels = np.array([[1, 0, 0], [0, 0, 1], [1, 0, 1]])
    scores = np.array([[0.9, 0.5, 0.5], [0.1, 0.5, 0.8], [0.7, 0.5, 0.3]])
    ap = per_tag_ap(labels, scores)
    assert ap[0] == 1.0 and np.isnan(ap[1]) and ap[2] == pytest.approx(0.5 * (1 + 2 / 3))
    assert mean_average_precision(labels, scores) == pytest.approx(np.mean([ap[0], ap[2]]))


def test_tuned_thresholds_maximise_f1():
    rng = np.random.default_rng(1)
    labels = (rng.random((200, 3)) < [0.1, 0.5, 0.0]).astype(int)
    scores = np.clip(labels * 0.3 + rng.random((200, 3)) * 0.8, 0, 1)
    thresholds = tune_thresholds(labels, scores)
    f1 = f1_scores(labels, scores, thresholds)
    for t in range(2):
        brute = max(
            f1_scores(labels[:, [t]], scores[:, [t]], np.array([c]))[0]
            for c in np.unique(scores[:, t])
        )
        assert f1[t] == pytest.approx(brute)
    assert thresholds[2] == 0.5 and np.isnan(f1[2]) == (scores[:, 2] < 0.5).all()


def test_evaluate_command(tmp_path, capsys):
    data, run = tmp_path / "data", tmp_path / "run"
    make_dataset(data, images_per_experiment=6)
    train(data, run, "coeff", epochs=3)
    assert cli_main(["evaluate", "--data", str(data), "--model", str(run)]) == 0
    out = capsys.readouterr().out
    result = json.loads((run / "eval.json").read_text())
    assert f"mAP {result['mAP']:.4f}" in out and "Circular Beamstop" in out
    ap = [r["AP"] for r in result["per_tag"] if r["AP"] is not None]
    assert result["mAP"] == pytest.approx(np.mean(ap)) and result["images"] == 2 * 6
    assert (run / "pr_curves.png").stat().st_size > 1000 and (
        run / "ap_by_tag.png"
    ).stat().st_size > 1000
    card = json.loads((run / "model.json").read_text())
    assert card["metrics"]["test"]["mAP"] == result["mAP"] and "val_mAP" in card["metrics"]
    # several shards are pooled: their frames together, the shard list in the result
    argv = ["evaluate", "--data", str(data), "--model", str(run), "--test-shard", "8", "9"]
    assert cli_main(argv) == 0
    pooled = json.loads((run / "eval.json").read_text())
    assert pooled["test_shard"] == [8, 9] and pooled["images"] == 2 * 2 * 6
    # --out elsewhere: the files go there and the run's card keeps its metrics
    card_bytes = (run / "model.json").read_bytes()
    argv = ["evaluate", "--data", str(data), "--model", str(run), "--out", str(tmp_path / "o")]
    assert cli_main(argv) == 0
    assert (tmp_path / "o" / "eval.json").is_file() and (tmp_path / "o" / "pr_curves.png").is_file()
    assert (run / "model.json").read_bytes() == card_bytes
    # averaged over symmetries: reported as such; the card keeps the plain model's metrics
    assert (
        cli_main(["evaluate", "--data", str(data), "--model", str(run), "--symmetries", "8"]) == 0
    )
    assert json.loads((run / "eval.json").read_text())["symmetries"] == 8
    assert (run / "model.json").read_bytes() == card_bytes


def test_evaluate_never_writes_into_the_shipped_folder(tmp_path, monkeypatch):
    """The shipped tagger's folder is part of the package: its report goes to eval_<data>."""
    data, run = tmp_path / "data", tmp_path / "shipped"
    make_dataset(data, images_per_experiment=4)
    train(data, run, "coeff", epochs=1)
    monkeypatch.setattr("scattertag.evaluate.pretrained_dir", lambda: run)
    monkeypatch.chdir(tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert cli_main(["evaluate", "--data", str(data), "--model", str(run)]) == 0
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert (tmp_path / "eval_data" / "eval.json").is_file()


def test_evaluate_refuses_mismatches(tmp_path, capsys):
    data, run = tmp_path / "data", tmp_path / "run"
    make_dataset(data, images_per_experiment=3)
    train(data, run, "coeff", epochs=1)
    card = json.loads((run / "model.json").read_text())
    (run / "model.json").write_text(
        json.dumps({**card, "vocabulary": card["vocabulary"][:-1] + ["Horizon"]})
    )
    capsys.readouterr()
    assert cli_main(["evaluate", "--data", str(data), "--model", str(run)]) == 2
    (err,) = capsys.readouterr().err.splitlines()  # one line, no traceback
    assert re.fullmatch(
        f"scattertag evaluate: error: vocabulary mismatch: model {run} .*'Horizon'.* "
        f"but dataset {data} .*",
        err,
    )
    (run / "model.json").write_text(json.dumps(card))
    (data / "shard_09.h5").unlink()
    assert cli_main(["evaluate", "--data", str(data), "--model", str(run)]) == 2
    (err,) = capsys.readouterr().err.splitlines()
    assert err.startswith("scattertag evaluate: error: ") and "shard_09.h5" in err
