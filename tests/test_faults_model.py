"""Model cards checked against their networks: vocabulary, thresholds, NaN weights, digests."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import tiny_model
from scattertag.evaluate import evaluate
from scattertag.models import load_model


def edit_card(run_dir, **changes):
    card = json.loads((run_dir / "model.json").read_text())
    card.update(changes)
    (run_dir / "model.json").write_text(json.dumps(card))
    return card


def test_save_records_the_weights_digest_and_load_checks_it(tmp_path):
    a, b = tiny_model(tmp_path / "a"), tiny_model(tmp_path / "b")
    load_model(a)
    (a / "model.safetensors").write_bytes((b / "model.safetensors").read_bytes())  # same shapes
    with pytest.raises(ValueError, match="do not belong to card"):
        load_model(a)


def test_vocabulary_one_tag_short_is_refused(tmp_path):
    run = tiny_model(tmp_path / "m")
    card = json.loads((run / "model.json").read_text())
    edit_card(run, vocabulary=card["vocabulary"][:-1], thresholds=card["thresholds"][:-1])
    with pytest.raises(ValueError, match="outputs 17 tags, the vocabulary has 16"):
        load_model(run)


def test_thresholds_too_short_or_not_finite_are_refused(tmp_path):
    run = tiny_model(tmp_path / "m")
    card = json.loads((run / "model.json").read_text())
    edit_card(run, thresholds=card["thresholds"][:-2])
    with pytest.raises(ValueError, match="15 thresholds for 17 tags"):
        load_model(run)
    edit_card(run, thresholds=[float("nan")] * 17)
    with pytest.raises(ValueError, match=r"finite numbers in \[0, 1\]"):
        load_model(run)


def test_nan_weights_are_refused(tmp_path):
    run = tiny_model(tmp_path / "m")
    state = load_file(str(run / "model.safetensors"))
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = torch.full_like(state[name], float("nan"))
    save_file(state, str(run / "model.safetensors"))
    edit_card(run, weights_sha256=None)  # as an old card without a digest would
    with pytest.raises(ValueError, match="NaN or Inf"):
        load_model(run)


def test_evaluate_refuses_nan_probabilities():
    labels = np.eye(4, 3)
    scores = np.full((4, 3), np.nan)
    with pytest.raises(ValueError, match="NaN or Inf probabilities for 4 of 4"):
        evaluate(labels, scores, ["a", "b", "c"], np.full(3, 0.5))


def test_the_shipped_card_matches_its_weights():
    model, card = load_model()
    assert len(card.vocabulary) == model.head[-1].out_features
