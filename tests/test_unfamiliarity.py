"""Unfamiliarity score: near 0 for Poisson scattering frames, above every real frame for a
photograph, noise and a checkerboard, and a column of predict's table."""

import csv
from pathlib import Path

import numpy as np
import pytest

import scattertag
from conftest import BEAM, frame
from scattertag.features import unfamiliarity
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


def test_a_sample_of_the_cells_scores_as_every_cell(monkeypatch):
    """A 1024 x 1024 frame is scored on ~SAMPLE_PIXELS pixels (arcs of cells, one in 16),
    and gets the score of every cell to within 0.1 decade: Poisson rings near 0, a
    photograph (the camera, 2 x 2 pixels a grey level, Poisson-sampled) far above."""
    pytest.importorskip("skimage")
    rng = np.random.default_rng(2)
    rows, cols = np.indices((1024, 1024))
    r = np.hypot(cols - 430.0, rows - 580.0)
    rings = 20 + 3000 / (1 + (r / 20) ** 2) + 400 * np.exp(-0.5 * ((r - 300) / 4) ** 2)
    camera = np.kron(probe_frames(1e3)["camera"], np.ones((2, 2)))
    centre = (430.0, 580.0)
    for counts, familiar in ((rng.poisson(rings), True), (rng.poisson(camera), False)):
        sampled = Unfamiliarity(counts.shape, centre)
        assert sampled.stride == 16 and len(sampled.index) < 2 * unfamiliarity.SAMPLE_PIXELS
        with monkeypatch.context() as patch:
            patch.setattr(unfamiliarity, "SAMPLE_PIXELS", counts.size)
            every = Unfamiliarity(counts.shape, centre)
        assert every.stride == 1 and len(every.index) > 0.99 * counts.size
        valid = np.ones(counts.shape, bool)
        a, b = sampled(counts, valid), every(counts, valid)
        assert abs(a.structure - b.structure) < 0.1 and abs(a.dispersion - b.dispersion) < 0.1
        assert (a.value < 0.25 and b.value < 0.25) if familiar else min(a.value, b.value) > 0.6


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


def test_a_centre_too_far_off_the_frame_for_any_cell_scores_nothing():
    """No polar cell within r_max of the centre: no sampled pixel, and no error (numpy sums
    an empty selection to int64, which np.divide cannot write to)."""
    counts = np.random.default_rng(0).poisson(5.0, (128, 128))
    far = Unfamiliarity(counts.shape, (64.0, 400.0))  # 272 px below the frame; r_max 192
    assert len(far.index) == 0
    result = far(counts, np.ones(counts.shape, bool))
    assert result.structure == result.dispersion == NOTHING
