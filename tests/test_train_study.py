"""The resolution study and the demo drive build -> train -> evaluate for the three views."""

from __future__ import annotations

import json

import pytest

import scattertag.study
from conftest import make_dataset
from scattertag.cli import main as cli_main
from scattertag.study import VIEWS, markdown_table


@pytest.fixture
def fake_build(monkeypatch):
    """Replace ``scattertag build`` by the small learnable fake dataset; records the sizes."""
    sizes = []

    def build(data_dir, size, settings):
        sizes.append(size)
        if not (data_dir / "manifest.json").exists():
            make_dataset(
                data_dir,
                experiments=settings.experiments,
                images_per_experiment=settings.images_per_experiment,
            )
        return 0.5

    monkeypatch.setattr(scattertag.study, "build", build)
    return sizes


@pytest.mark.slow
def test_resolution_study_and_rerun(tmp_path, fake_build, capsys):
    argv = [
        "study",
        "resolution",
        "--sizes",
        "64",
        "--out",
        str(tmp_path),
        "--experiments",
        "20",
        "--images-per-experiment",
        "4",
        "--input-size",
        "64",
        "--epochs",
        "1",
        "--coeff-epochs",
        "1",
        "--joint-epochs",
        "1",
        "--batch-size",
        "16",
    ]
    assert cli_main(argv) == 0
    rows = json.loads((tmp_path / "resolution.json").read_text())["rows"]
    assert [(r["size"], r["view"]) for r in rows] == [(64, "image"), (64, "coeff"), (64, "joint")]
    for r in rows:
        result = json.loads((tmp_path / "runs_64" / r["view"] / "eval.json").read_text())
        assert r["test_mAP"] == result["mAP"] and r["train_s"] > 0
    assert "| 64 | joint |" in (tmp_path / "resolution.md").read_text()
    # a second run reuses the finished runs (resume with nothing left to do) and their evaluations
    capsys.readouterr()
    assert cli_main(argv) == 0
    assert "epoch 1/1" not in capsys.readouterr().out
    assert fake_build == [64, 64]
    rows = json.loads((tmp_path / "resolution.json").read_text())["rows"]
    assert all(r["evaluate_s"] < 0.5 for r in rows)


def test_table_and_plot_of_several_sizes(tmp_path):
    rows = [
        {
            "size": s,
            "view": v,
            "test_mAP": m,
            "test_images": 10,
            "build_s": 1.0,
            "train_s": 2.0,
            "evaluate_s": 0.1,
        }
        for s, m0 in ((256, 0.5), (1000, 0.6))
        for v, m in zip(VIEWS, (m0, m0 + 0.1, m0 + 0.2))
    ]
    table = markdown_table(rows).splitlines()
    assert len(table) == 2 + 6 and table[-1] == "| 1000 | joint | 0.8000 | 10 | 1 | 2 | 0 |"
    assert scattertag.study.plot(rows, tmp_path / "r.png").stat().st_size > 1000


def test_study_refuses_sizes_below_input(tmp_path, capsys):
    assert cli_main(["study", "resolution", "--sizes", "32", "--out", str(tmp_path)]) == 2
    (err,) = capsys.readouterr().err.splitlines()
    assert err == "scattertag study: error: --sizes 32 is smaller than --input-size 128"
