"""Prediction: table and CSV, masks, manifests, bad input rows, exit codes, workers, show."""

import csv
from pathlib import Path

import fabio
import h5py
import numpy as np
import pytest
from fabio.cbfimage import CbfImage
from fabio.edfimage import EdfImage
from fabio.tifimage import TifImage
from PIL import Image

import scattertag
from conftest import BEAM, SHAPE, frame
from scattertag.cli import main
from scattertag.geometry import Geometry, GeometryOptions
from scattertag.prediction.table import columns
from scattertag.tags import DEFAULT_VOCABULARY

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples"


def probabilities(row):
    return np.array([row[t] for t in DEFAULT_VOCABULARY.tags])


def test_table_rows_columns_tags_and_csv(tmp_path, predictor):
    np.save(tmp_path / "stack.npy", np.stack([frame(1), frame(2), frame(3)]))
    TifImage(data=frame(4)).write(str(tmp_path / "one.tif"))
    out = tmp_path / "p.csv"
    table = scattertag.predict(
        [tmp_path / "one.tif", tmp_path / "stack.npy"], beam_center=BEAM, model=predictor, out=out
    )
    assert [(Path(r["path"]).name, r["frame"]) for r in table] == [("one.tif", 0)] + [
        ("stack.npy", i) for i in range(3)
    ]
    assert table.columns == columns(DEFAULT_VOCABULARY.tags)
    for row in table:
        p = probabilities(row)
        assert row["error"] == "" and np.all((p > 0) & (p < 1))
        expected = [
            t for t, x, th in zip(DEFAULT_VOCABULARY.tags, p, predictor.thresholds) if x >= th
        ]
        assert row["tags"] == ";".join(expected)
    # different frames give different probabilities (the model sees the pixels)
    assert not np.allclose(probabilities(table[1]), probabilities(table[2]))
    with open(out, newline="") as f:
        written = list(csv.DictReader(f))
    assert list(written[0]) == table.columns and len(written) == 4
    np.testing.assert_allclose(
        [float(written[2][t]) for t in DEFAULT_VOCABULARY.tags], probabilities(table[2]), atol=1e-4
    )
    assert table["Ring"] == [r["Ring"] for r in table.rows]


def test_every_format_gives_the_same_probabilities(tmp_path, predictor):
    data = frame(5)
    TifImage(data=data).write(str(tmp_path / "a.tif"))
    CbfImage(data=data).write(str(tmp_path / "a.cbf"))
    EdfImage(data=data).write(str(tmp_path / "a.edf"))
    np.save(tmp_path / "a.npy", data)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("entry/data/data", data=data[None])
    table = scattertag.predict(sorted(tmp_path.iterdir()), beam_center=BEAM, model=predictor)
    reference = probabilities(table[0])
    for row in table:
        np.testing.assert_allclose(probabilities(row), reference, rtol=1e-5, err_msg=row["path"])


def test_negative_and_nonfinite_pixels_are_excluded_like_a_mask(tmp_path, predictor):
    data = frame(6)
    bad = np.zeros(SHAPE, bool)
    bad[30:34, :] = True  # a module gap
    bad[::7, ::11] = True  # scattered dead pixels
    gaps = np.where(bad, -1, data).astype(np.int32)  # Pilatus style
    nans = np.where(bad, np.nan, data).astype(np.float32)  # NaN style
    clean = np.where(bad, 0, data).astype(np.int32)
    np.save(tmp_path / "gaps.npy", gaps)
    np.save(tmp_path / "nans.npy", nans)
    np.save(tmp_path / "clean.npy", clean)
    np.save(tmp_path / "mask.npy", bad.astype(np.uint8))  # nonzero = excluded
    masked = scattertag.predict(
        tmp_path / "clean.npy", beam_center=BEAM, mask=tmp_path / "mask.npy", model=predictor
    )
    unmasked = scattertag.predict(tmp_path / "clean.npy", beam_center=BEAM, model=predictor)
    auto = scattertag.predict(
        [tmp_path / "gaps.npy", tmp_path / "nans.npy"], beam_center=BEAM, model=predictor
    )
    for row in auto:
        np.testing.assert_allclose(probabilities(row), probabilities(masked[0]), rtol=1e-5)
    assert not np.allclose(probabilities(unmasked[0]), probabilities(masked[0]))


def test_detector_invalid_values_and_dummy_are_excluded(tmp_path, predictor):
    """Eiger's all-bits-set values (by bit depth) and a pyFAI dummy act like a mask."""
    data = frame(13).astype(np.int64)  # wide enough for every marker value below
    bad = np.zeros(SHAPE, bool)
    bad[:, 50:53] = True
    masked = scattertag.predict(data, beam_center=BEAM, mask=bad, model=predictor)[0]
    eiger32 = np.where(bad, 2**32 - 1, data).astype(np.uint32)
    eiger16 = np.where(bad, 2**16 - 1, data).astype(np.uint16)
    dummy = np.where(bad, 5000, data).astype(np.uint16)  # no count reaches 5000
    table = scattertag.predict([eiger32, eiger16], beam_center=BEAM, model=predictor)
    with_dummy = scattertag.predict(
        dummy, options=GeometryOptions(BEAM, dummy=5000.0, delta_dummy=0.5), model=predictor
    )
    for row in [*table, *with_dummy]:
        np.testing.assert_allclose(probabilities(row), probabilities(masked), rtol=1e-5)
    without = scattertag.predict(dummy, beam_center=BEAM, model=predictor)[0]
    assert not np.allclose(probabilities(without), probabilities(masked))


def test_in_memory_frames_stacks_and_masks(tmp_path, predictor):
    """Arrays tag like the same frames read from files; an array mask like a mask file."""
    data, other = frame(40), frame(41)
    np.save(tmp_path / "a.npy", data)
    bad = np.zeros(SHAPE, np.uint8)
    bad[30:34] = 1
    np.save(tmp_path / "m.npy", bad)
    from_file = scattertag.predict(tmp_path / "a.npy", beam_center=BEAM, model=predictor)
    one = scattertag.predict(data, beam_center=BEAM, model=predictor)
    stack = scattertag.predict(np.stack([other, data]), beam_center=BEAM, model=predictor)
    mixed = scattertag.predict(
        [tmp_path / "a.npy", data], beam_center=BEAM, model=predictor, workers=0
    )
    assert repr(one) == f"Table(1 rows, 0 failed, {len(DEFAULT_VOCABULARY)} tags)"
    assert [(r["path"], r["frame"]) for r in one] == [("<array>", 0)]
    assert [(r["path"], r["frame"]) for r in stack] == [("<array>", 0), ("<array>", 1)]
    assert [r["path"] for r in mixed] == [str(tmp_path / "a.npy"), "<array 1>"]
    for row in (one[0], stack[1], *mixed):
        np.testing.assert_allclose(probabilities(row), probabilities(from_file[0]), rtol=1e-5)
    assert not np.allclose(probabilities(stack[0]), probabilities(stack[1]))
    by_array = scattertag.predict(data, beam_center=BEAM, mask=bad, model=predictor)
    by_file = scattertag.predict(
        tmp_path / "a.npy", beam_center=BEAM, mask=tmp_path / "m.npy", model=predictor
    )
    np.testing.assert_allclose(probabilities(by_array[0]), probabilities(by_file[0]), rtol=1e-5)
    assert not np.allclose(probabilities(by_array[0]), probabilities(one[0]))
    picked = scattertag.predict(np.stack([other, data]), beam_center=BEAM, frame=1, model=predictor)
    assert [r["frame"] for r in picked] == [1]
    wrong = scattertag.predict(data, beam_center=BEAM, mask=bad[:10], model=predictor)
    assert "mask is 10 x 120, frame is 90 x 120" in wrong[0]["error"]
    with pytest.raises(ValueError, match="2-D frame or a 3-D stack"):
        scattertag.predict(np.zeros(50), beam_center=BEAM, model=predictor)
    found = scattertag.predict(data, model=predictor)[0]  # no centre given: the image's own
    assert found["geometry_source"] == "estimated" and found["error"] == ""
    assert abs(found["beam_x"] - BEAM[0]) < 2 and abs(found["beam_y"] - BEAM[1]) < 2


def test_geometry_sources_columns_and_beam_off_image(tmp_path, predictor):
    """given > PONI beside the file > header > estimated; off-frame centres give Beam Off
    Image; a centre the image contradicts gets a warning."""
    data = frame(50)
    for name in ("h", "p", "e"):
        (tmp_path / name).mkdir()
    centre = {"Center_1": str(BEAM[0] + 0.5), "Center_2": str(BEAM[1] + 0.5)}  # ESRF keys
    EdfImage(data=data, header=centre).write(str(tmp_path / "h" / "h.edf"))
    np.save(tmp_path / "p" / "p.npy", data)
    Geometry(SHAPE, BEAM).to_poni(tmp_path / "p" / "p.poni")
    np.save(tmp_path / "e" / "e.npy", data)
    paths = [tmp_path / "h" / "h.edf", tmp_path / "p", tmp_path / "e" / "e.npy"]
    table = scattertag.predict(paths, model=predictor)
    assert [r["geometry_source"] for r in table] == ["header", "poni", "estimated"]
    for row in table:
        assert row["error"] == "" and row["warning"] == ""
        assert abs(row["beam_x"] - BEAM[0]) < 2 and abs(row["beam_y"] - BEAM[1]) < 2
    given = scattertag.predict(paths[0], beam_center=BEAM, model=predictor)[0]
    assert given["geometry_source"] == "given"
    np.testing.assert_allclose(probabilities(given), probabilities(table[0]), rtol=1e-5)
    off = scattertag.predict(data, beam_center=(-60.0, 40.0), model=predictor)[0]
    assert off["Beam Off Image"] == 1.0 and "Beam Off Image" in off["tags"].split(";")
    swapped = scattertag.predict(data, beam_center=BEAM[::-1], model=predictor)[0]
    assert "disagrees with the image" in swapped["warning"] and "swapped?" in swapped["warning"]
    # a file's verdict is kept beside the set-ups: tagging it again reads the same words back
    rows = [scattertag.predict(paths[2], beam_center=BEAM[::-1], model=predictor)[0]]
    rows.append(scattertag.predict(paths[2], beam_center=BEAM[::-1], model=predictor)[0])
    assert rows[0]["warning"] == rows[1]["warning"] == swapped["warning"]


def test_manifest_paths_masks_frames_and_geometry(tmp_path, predictor):
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "s.npy", np.stack([frame(7), frame(8)]))
    np.save(tmp_path / "data" / "m.npy", np.zeros(SHAPE, np.uint8))
    manifest = tmp_path / "files.csv"
    manifest.write_text(
        "path,beam_x,beam_y,mask,frame,pixel_size_um,distance_m,energy_kev\n"
        f"data/s.npy,{BEAM[0]},{BEAM[1]},data/m.npy,1,,,\n"
        f"data/s.npy,{BEAM[0]},{BEAM[1]},,,,,\n"
        f"data/s.npy,100,10,,1,172,1.5,12.0\n"
        f"data/s.npy,abc,10,,1,,,\n"
        f"data/s.npy,{BEAM[0]},{BEAM[1]},,5,,,\n"
    )
    table = scattertag.predict(manifest=manifest, model=predictor)
    assert [(r["path"], r["frame"]) for r in table] == [
        ("data/s.npy", 1),
        ("data/s.npy", 0),
        ("data/s.npy", 1),
        ("data/s.npy", 1),
        ("data/s.npy", 1),
        ("data/s.npy", 5),
    ]
    assert [bool(r["error"]) for r in table] == [False, False, False, False, True, True]
    # an all-zero mask excludes nothing; the same frame with the same geometry agrees
    np.testing.assert_allclose(probabilities(table[0]), probabilities(table[2]), rtol=1e-5)
    # the beam centre reaches the features: another geometry, other probabilities
    assert not np.allclose(probabilities(table[3]), probabilities(table[0]))
    assert table[4]["error"] == "files.csv line 5: beam_x must be a number, got 'abc'"
    assert "frame 5 out of range" in table[5]["error"]


def bad_files(tmp_path) -> dict[str, str]:
    """Bad inputs -> a phrase their error must contain."""
    good = frame(9)
    TifImage(data=good).write(str(tmp_path / "good.tif"))
    cases = {}
    TifImage(data=good).write(str(tmp_path / "truncated.tif"))
    raw = (tmp_path / "truncated.tif").read_bytes()
    (tmp_path / "truncated.tif").write_bytes(raw[: len(raw) // 3])
    cases["truncated.tif"] = "truncated.tif"
    (tmp_path / "corrupt.cbf").write_bytes(b"###CBF: not really\n" + bytes(range(256)) * 4)
    cases["corrupt.cbf"] = "not a readable .cbf file"
    (tmp_path / "notes.xyz").write_text("hello")
    cases["notes.xyz"] = "unknown format '.xyz'"
    (tmp_path / "folder.tif").mkdir()
    cases["folder.tif"] = "no detector files in this folder"
    cases["missing.tif"] = "file not found"
    np.save(tmp_path / "one_pixel.npy", np.ones((1, 1), np.uint32))
    cases["one_pixel.npy"] = "1 x 1 pixels"
    with h5py.File(tmp_path / "huge.h5", "w") as f:
        f.create_dataset("data", shape=(20_000, 20_000), dtype=np.uint32, chunks=(500, 500))
    cases["huge.h5"] = "the limit is"
    np.save(tmp_path / "all_nan.npy", np.full(SHAPE, np.nan, np.float32))
    cases["all_nan.npy"] = "no valid pixels"
    np.save(tmp_path / "all_negative.npy", np.full(SHAPE, -2, np.int32))
    cases["all_negative.npy"] = "no valid pixels"
    return cases


def test_bad_inputs_each_get_a_row_and_the_run_goes_on(tmp_path, model_dir, capsys):
    cases = bad_files(tmp_path)
    names = ["good.tif", *cases, "good.tif"]
    out = tmp_path / "p.csv"
    argv = [
        "predict",
        *[str(tmp_path / n) for n in names],
        "--beam-center",
        *map(str, BEAM),
        "--model",
        str(model_dir),
        "--out",
        str(out),
        "--workers",
        "0",
        "--quiet",
    ]
    assert main(argv) == 1
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [Path(r["path"]).name for r in rows] == names
    assert rows[0]["error"] == rows[-1]["error"] == "" and rows[0]["Ring"] == rows[-1]["Ring"] != ""
    for row, name in zip(rows[1:-1], cases):
        assert cases[name] in row["error"], (name, row["error"])
        assert row["Ring"] == "" and row["tags"] == ""
    assert main(argv[:2] + argv[-10:]) == 0  # the good file alone
    assert f"1 of 1 frames tagged -> {out}" in capsys.readouterr().out


def test_bad_arguments_exit_2(tmp_path, model_dir, capsys):
    np.save(tmp_path / "a.npy", frame(10))
    base = [
        "predict",
        str(tmp_path / "a.npy"),
        "--model",
        str(model_dir),
        "--out",
        str(tmp_path / "p.csv"),
    ]
    assert main(base + ["--beam-center", "abc", "5"]) == 2  # a beam centre given as text
    assert "invalid float value: 'abc'" in capsys.readouterr().err
    assert main(base + ["--beam-center", "1", "2", "--pixel-size-um", "0"]) == 2
    assert (
        main(["predict", "--manifest", str(tmp_path / "none.csv"), "--model", str(model_dir)]) == 2
    )
    assert (
        main(base + ["--beam-center", "1", "2", "--model", str(tmp_path)]) == 2
    )  # not a model folder
    (tmp_path / "m.csv").write_text("path,beam_x\na.npy,3\n")
    assert main(["predict", "--manifest", str(tmp_path / "m.csv"), "--model", str(model_dir)]) == 2
    assert "missing column(s) ['beam_y']" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


def test_workers_give_the_same_rows(tmp_path, predictor):
    files = []
    for i in range(5):
        np.save(tmp_path / f"f{i}.npy", frame(20 + i))
        files.append(tmp_path / f"f{i}.npy")
    files.insert(2, tmp_path / "missing.npy")
    np.save(
        tmp_path / "stack.npy", np.stack([frame(30), frame(31), frame(32)])
    )  # split among workers
    files.insert(4, tmp_path / "stack.npy")
    serial = scattertag.predict(files, beam_center=BEAM, model=predictor, workers=0, batch_size=4)
    parallel = scattertag.predict(files, beam_center=BEAM, model=predictor, workers=2, batch_size=4)
    assert [(r["path"], r["frame"]) for r in parallel] == [(r["path"], r["frame"]) for r in serial]
    assert len(serial) == len(files) + 2
    for a, b in zip(serial, parallel):
        assert a["error"] == b["error"] and a["tags"] == b["tags"]
        if not a["error"]:
            np.testing.assert_allclose(probabilities(a), probabilities(b), rtol=1e-4, atol=1e-6)


def _worker_makers() -> list[bool]:
    """In a worker process: for each ViewMaker it holds, whether the parent marked it."""
    from scattertag.prediction import prepare

    assert prepare._WORKER_PREPARER is not None
    return [getattr(m, "marked", False) for m in prepare._WORKER_PREPARER.makers.values()]


def test_forked_workers_start_with_the_parents_set_up(tmp_path, predictor):
    from scattertag.prediction.pipeline import Workers
    from scattertag.prediction.sources import items_from_paths

    paths = []
    for i in range(3):
        np.save(tmp_path / f"f{i}.npy", frame(40 + i))
        paths.append(str(tmp_path / f"f{i}.npy"))
    items = items_from_paths(paths, GeometryOptions(BEAM))
    with Workers(predictor.view_spec, workers=2) as prepare:
        if not prepare.forked:
            pytest.skip("worker processes are spawned on this platform")
        views = prepare(items)
        assert next(views)[0].error == ""  # done here: the set-up of the geometry
        assert prepare.pool is None  # workers are forked only now, with that set-up
        (maker,) = prepare.local.makers.values()
        maker.marked = True
        assert [v.error for part in views for v in part] == ["", ""]
        assert prepare.pool is not None
        assert prepare.pool.submit(_worker_makers).result() == [True]


def test_show_writes_a_png(tmp_path, model_dir):
    np.save(tmp_path / "a.npy", frame(11))
    out = tmp_path / "show.png"
    argv = [
        "show",
        str(tmp_path / "a.npy"),
        "--beam-center",
        *map(str, BEAM),
        "--model",
        str(model_dir),
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    with Image.open(out) as im:
        assert im.size[0] > 600 and im.size[1] > 300
    assert main(["show", str(tmp_path / "missing.npy"), *argv[2:]]) == 1


@pytest.mark.skipif(not REAL.is_dir(), reason="shared/real-samples not beside the repository")
def test_real_pilatus_files(predictor):
    """Both real frames tag without error; their module gaps (-1/-2) are excluded, not counted."""
    table = scattertag.predict(
        manifest=None,
        files=[REAL / "rings_mn23_0170.tif"],
        beam_center=(303.0, 531.0),
        pixel_size_um=172,
        distance_m=1.0,
        model=predictor,
    )
    table2 = scattertag.predict(
        REAL / "gisaxs_pilatus2m_00005.cbf",
        beam_center=(795.0, 1300.0),
        pixel_size_um=172,
        model=predictor,
    )
    for row in [*table, *table2]:
        assert row["error"] == "" and 0 < row["Ring"] < 1


def test_default_model_is_the_shipped_one(tmp_path, model_dir, monkeypatch):
    """With no model given, predict loads the pretrained folder (here pointed at a test model)."""
    import scattertag.models.io as io

    monkeypatch.setattr(io, "pretrained_dir", lambda: Path(model_dir))
    np.save(tmp_path / "a.npy", frame(12))
    default = scattertag.predict(tmp_path / "a.npy", beam_center=BEAM)
    explicit = scattertag.predict(tmp_path / "a.npy", beam_center=BEAM, model=model_dir)
    np.testing.assert_allclose(probabilities(default[0]), probabilities(explicit[0]))


SHIPPED = Path(scattertag.__file__).parent / "pretrained" / "model.json"


@pytest.mark.skipif(
    not SHIPPED.is_file() or not REAL.is_dir(), reason="no shipped model yet, or no real samples"
)
def test_shipped_model_on_real_rings():
    """The shipped tagger sees the rings of the real Pilatus 1M frame."""
    table = scattertag.predict(REAL / "rings_mn23_0170.tif", beam_center=(303.0, 531.0))
    row = table[0]
    assert row["error"] == ""
    assert row["Ring"] >= 0.5, row["tags"]


def test_poni_detector_mask_is_used(tmp_path, predictor):
    """A PONI file naming a Pilatus 1M: its module gaps are excluded like a mask file."""
    import pyFAI
    from pyFAI.azimuthalIntegrator import AzimuthalIntegrator

    from scattertag.geometry import poni_detector_valid

    detector = pyFAI.detector_factory("Pilatus1M")
    ai = AzimuthalIntegrator(dist=0.5, poni1=0.05, poni2=0.06, detector=detector)
    ai.wavelength = 1e-10
    ai.write(str(tmp_path / "p1m.poni"))
    valid = poni_detector_valid(tmp_path / "p1m.poni")
    assert valid.shape == detector.max_shape and 0 < (~valid).sum() < valid.size // 5
    data = np.random.default_rng(0).poisson(50, detector.max_shape).astype(np.int32)
    np.save(tmp_path / "f.npy", data)
    np.save(tmp_path / "m.npy", (~valid).astype(np.uint8))
    by_poni = scattertag.predict(tmp_path / "f.npy", poni=tmp_path / "p1m.poni", model=predictor)
    geometry = Geometry.from_poni(tmp_path / "p1m.poni")
    by_mask = scattertag.predict(
        tmp_path / "f.npy",
        beam_center=geometry.beam_center,
        pixel_size_um=geometry.pixel_size * 1e6,
        distance_m=geometry.distance,
        energy_kev=geometry.energy,
        mask=tmp_path / "m.npy",
        model=predictor,
    )
    assert by_poni[0]["error"] == "" and by_poni[0]["geometry_source"] == "poni"
    np.testing.assert_allclose(probabilities(by_poni[0]), probabilities(by_mask[0]), rtol=1e-4)


def test_bundled_examples_get_their_centres_from_the_image(predictor):
    """The demo's real frames, no geometry given: each gets a centre from the image within 2 %
    of its diagonal of the one its sources list (none, or a centre taken from another set-up
    of the folder, fails)."""
    examples = Path(scattertag.__file__).parent / "examples"
    with open(examples / "frames.tsv", newline="") as f:
        listed = {r["file"]: r for r in csv.DictReader(f, delimiter="\t")}
    table = scattertag.predict(examples, model=predictor)
    assert sorted(Path(row["path"]).name for row in table) == sorted(listed)
    for row in table:
        name = Path(row["path"]).name
        assert row["error"] == "" and row["geometry_source"] in ("estimated", "series"), name
        x, y = float(listed[name]["beam_x"]), float(listed[name]["beam_y"])
        gap = np.hypot(float(row["beam_x"]) - x, float(row["beam_y"]) - y)
        assert gap <= 0.02 * np.hypot(*fabio.open(row["path"]).data.shape), (name, gap)
