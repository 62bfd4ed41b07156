"""Prediction provenance: --threshold overrides, the model column and the JSON sidecar."""

import json

import numpy as np
import pytest

import scattertag
from conftest import BEAM, frame
from scattertag.adapt.provenance import model_id, parse_thresholds, sidecar_path
from scattertag.cli import main
from scattertag.errors import UserError
from scattertag.models.card import ModelCard
from scattertag.prediction.table import read_csv


def test_parse_thresholds():
    assert parse_thresholds(["Ring=0.25", "Beam Off Image=0.5"]) == {
        "Ring": 0.25,
        "Beam Off Image": 0.5,
    }
    for bad in ["Ring", "Ring=high", "Ring=1.5", "=0.3"]:
        with pytest.raises(UserError, match="TAG=VALUE"):
            parse_thresholds([bad])


def test_thresholds_model_column_and_sidecar(tmp_path, model_dir):
    np.save(tmp_path / "f.npy", frame())
    out = tmp_path / "p.csv"
    low = scattertag.predict(
        [tmp_path / "f.npy"], beam_center=BEAM, model=model_dir, thresholds={"Ring": 0.0}, out=out
    )
    high = scattertag.predict(
        [tmp_path / "f.npy"], beam_center=BEAM, model=model_dir, thresholds={"Ring": 1.0}
    )
    assert "Ring" in low[0]["tags"].split(";") and "Ring" not in high[0]["tags"].split(";")
    card = ModelCard.read(model_dir)
    ident = model_id(card)
    assert len(ident) == 12 and ident == card.weights_sha256[:12]
    rows = read_csv(out)
    assert rows[0]["model"] == ident
    side = json.loads(sidecar_path(out).read_text())
    assert side["model_id"] == ident and side["threshold_overrides"] == {"Ring": 0.0}
    assert side["thresholds"]["Ring"] == 0.0
    assert side["thresholds"]["BCC"] == pytest.approx(card.thresholds[0])
    with pytest.raises(UserError, match="Spaghetti"):
        scattertag.predict(
            [tmp_path / "f.npy"], beam_center=BEAM, model=model_dir, thresholds={"Spaghetti": 0.1}
        )


def test_threshold_option(tmp_path, model_dir):
    np.save(tmp_path / "f.npy", frame())
    out = tmp_path / "p.csv"
    argv = ["predict", str(tmp_path / "f.npy"), "--beam-center", *map(str, BEAM)]
    argv += ["--model", str(model_dir), "--out", str(out), "--workers", "0", "--quiet"]
    assert main([*argv, "--threshold", "Ring=0", "--threshold", "Halo=1"]) == 0
    side = json.loads(sidecar_path(out).read_text())
    assert side["threshold_overrides"] == {"Ring": 0.0, "Halo": 1.0}
    assert main([*argv, "--threshold", "Ring"]) == 2
