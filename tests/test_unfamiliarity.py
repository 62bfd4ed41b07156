"""Unfamiliarity score: near 0 for Poisson scattering frames, above every real frame for a
photograph, noise and a checkerboard, and a column of predict's table."""

import csv
from pathlib import Path

import numpy as np
import pytest

import scattertag
from conftest import BEAM, frame
from scattertag.features.unfamiliarity import NOTHING, Unfamiliarity, probe_frames
from scattertag.geometry import GeometryOptions
from scattertag.prediction.prepare import Preparer, item_frames
from scattertag.prediction.sources import items_from_paths

REAL_DEV = Path(__file__).resolve().parents[2] / "shared" / "real-dev"


def score(counts, centre, valid=None):
    """The Score of a frame, every pixel valid unless ``valid`` says otherwise."""
    counts = np.asarray(counts, np.float64)
    valid = np.ones(counts.shape, bool) if valid is None else valid
    return Unfamiliarity(counts.shape, centre)(np.where(valid, counts, 0.0), valid)


def centre_of(counts):
    rows, cols = counts.shape
    return ((cols - 1) / 2, (rows - 1) / 2)


def test_poisson_scattering_frames_score_near_zero_and_zeros_score_nothing():
    rng = np.random.default_rng(0)
    rows, cols = np.indices((400, 300))
    r = np.hypot(cols - 140.0, rows - 210.0)
    rings = 5 + 4000 / (1 + (r / 20) ** 3) + 800 * np.exp(-0.5 * ((r - 90) / 2) ** 2)
    for counts in (rng.poisson(rings), rng.poisson(300.0, (400, 300)), frame(3)):
        centre = BEAM if counts.shape == frame(3).shape else (140.0, 210.0)
        result = score(counts, centre)
        assert abs(result.dispersion) < 0.1 and result.value < 0.25, result
    zeros = score(np.zeros((128, 128)), (64.0, 64.0))
    assert zeros.structure == zeros.dispersion == NOTHING


def test_photographs_noise_and_checkerboard_score_high_without_real_frames():
    pytest.importorskip("skimage")
    for scale in (1e2, 1e4):
        for name, grey in probe_frames(scale).items():
            counts = np.rint(grey)
            assert score(counts, centre_of(counts)).value > 0.6, (name, scale)


@pytest.mark.skipif(not (REAL_DEV / "centres.tsv").is_file(), reason="no real-dev set")
def test_probes_rank_above_every_real_dev_frame():
    """Camera, astronaut (grey), uniform noise and a checkerboard scaled to 0..S counts for S
    = 100, 10^3, 10^4 (and Poisson-sampled at 10^4) score above all 15 real-dev frames, each
    with its checked beam centre (benchmarks/bench_unfamiliarity.py prints the table)."""
    pytest.importorskip("skimage")
    with open(REAL_DEV / "centres.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    preparer = Preparer(view_spec=None)  # for the pixels tagging uses; makes no views
    real = {}
    for row in rows:
        centre = (float(row["beam_x"]), float(row["beam_y"]))
        options = GeometryOptions.from_user(beam_center=centre)
        item = items_from_paths([str(REAL_DEV / row["local_path"])], options)[0]
        for one in item_frames(item):
            valid = preparer.valid(item, one)
            real[row["local_path"]] = score(one.counts, centre, valid).value
    assert len(real) == 15
    top = max(real.values())
    rng = np.random.default_rng(1)
    for scale, poisson in ((1e2, False), (1e3, False), (1e4, False), (1e4, True)):
        for name, grey in probe_frames(scale).items():
            counts = rng.poisson(grey) if poisson else np.rint(grey)
            value = score(counts, centre_of(counts)).value
            assert value > top, (name, scale, poisson, value, max(real, key=real.get), top)


def test_predict_writes_the_score_beside_the_tags(tmp_path, predictor):
    counts = frame(5)
    out = tmp_path / "rows.csv"
    table = scattertag.predict([counts, np.zeros((0, 0))], beam_center=BEAM, model=predictor)
    table.to_csv(out)
    good, bad = table[0], table[1]
    assert good["unfamiliarity"] == pytest.approx(score(counts, BEAM).value, abs=1e-6)
    assert bad["error"] and bad["unfamiliarity"] is None
    with open(out, newline="") as f:
        written = list(csv.DictReader(f))
    assert float(written[0]["unfamiliarity"]) == pytest.approx(good["unfamiliarity"], abs=1e-4)
    assert written[1]["unfamiliarity"] == ""
