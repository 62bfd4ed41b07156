"""Labels tables: reading, centres join, bad rows, labelled frames, evaluate on labels."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import BEAM, frame
from scattertag.adapt import frames as frames_module
from scattertag.adapt.evaluate_labels import ModelLoadError, evaluate_labels
from scattertag.adapt.frames import NoFramesError, labelled_frames
from scattertag.adapt.labels import LabelsError, default_group, read_labels
from scattertag.features.views import ViewSpec
from scattertag.models.card import ModelCard
from scattertag.tags import DEFAULT_VOCABULARY

REAL_DEV = Path(__file__).resolve().parents[2] / "shared" / "real-dev"
VOCABULARY = DEFAULT_VOCABULARY.to_list()


def write_set(folder: Path, rows: list[str], header: str, centres: bool = True) -> Path:
    """Frames a_0.npy, a_1.npy, b_0.npy ... in ``folder``, a labels.tsv and a centres.tsv."""
    for k, name in enumerate(["a_0", "a_1", "b_0", "b_1", "c_0"]):
        np.save(folder / f"{name}.npy", frame(seed=k))
    (folder / "labels.tsv").write_text("\n".join([header, *rows]) + "\n")
    if centres:
        lines = ["local_path\tbeam_x\tbeam_y\tconfidence\tmethod"]
        lines += [f"{n}.npy\t{BEAM[0]}\t{BEAM[1]}\thigh\tfit" for n in ["a_0", "a_1", "b_0", "b_1"]]
        (folder / "centres.tsv").write_text("\n".join(lines) + "\n")
    return folder / "labels.tsv"


HEADER = "local_path\tRing\tHalo\tnote"
ROWS = ["a_0.npy\t1\t0\tring", "a_1.npy\t1\t\t", "b_0.npy\t0\t1\thalo", "b_1.npy\t0\t0\t"]


def test_real_dev_format_with_centres(tmp_path):
    labels = write_set(tmp_path, ROWS, HEADER)
    table = read_labels(labels, tmp_path / "centres.tsv")
    assert table.tags == ["Ring", "Halo"]
    assert len(table) == 4 and not table.skipped
    assert table.items[0].options.beam_center == BEAM
    assert table.items[0].location == str(tmp_path / "a_0.npy")
    assert table.groups == ["a", "a", "b", "b"]
    assert np.isnan(table.labels[1, 1]) and table.labels[2, 1] == 1
    aligned = table.aligned(VOCABULARY)
    assert aligned.shape == (4, len(VOCABULARY))
    assert aligned[0, VOCABULARY.index("Ring")] == 1
    assert np.isnan(aligned[0, VOCABULARY.index("BCC")])  # not in the table: unknown
    assert len(table.sha256) == 64


def test_geometry_columns_group_and_csv(tmp_path):
    write_set(tmp_path, [], HEADER, centres=False)
    text = "path,beam_x,beam_y,pixel_size_um,group,frame,Ring\na_0.npy,3,4,172,s1,0,1\n"
    (tmp_path / "t.csv").write_text(text)
    table = read_labels(tmp_path / "t.csv")
    item = table.items[0]
    assert item.options.beam_center == (3.0, 4.0) and item.options.pixel_size == pytest.approx(
        172e-6
    )
    assert item.frame == 0 and table.groups == ["s1"]


def test_bad_rows_are_skipped_and_named(tmp_path):
    rows = [*ROWS, "c_0.npy\t1\t0\tno centre", "d_0.npy\tyes\t0\t", "\t1\t0\t"]
    table = read_labels(write_set(tmp_path, rows, HEADER), tmp_path / "centres.tsv")
    assert len(table) == 4 and len(table.skipped) == 3
    assert "line 6" in table.skipped[0] and "no beam centre" in table.skipped[0]
    assert "Ring='yes'" in table.skipped[1]
    assert "empty" in table.skipped[2]


def test_unknown_tag_and_bad_tables(tmp_path):
    labels = write_set(tmp_path, ["a_0.npy\t1\t1\t"], "local_path\tRing\tSpaghetti\tnote")
    table = read_labels(labels, tmp_path / "centres.tsv")
    with pytest.raises(LabelsError, match="Spaghetti"):
        table.aligned(VOCABULARY)
    with pytest.raises(LabelsError, match="not found"):
        read_labels(tmp_path / "missing.tsv")
    (tmp_path / "x.tsv").write_text("file\tRing\na\t1\n")
    with pytest.raises(LabelsError, match="no file column"):
        read_labels(tmp_path / "x.tsv")


def test_last_line_of_a_file_counts(tmp_path):
    rows = [*ROWS, "a_0.npy\t0\t1\tcorrected"]
    table = read_labels(write_set(tmp_path, rows, HEADER), tmp_path / "centres.tsv")
    assert len(table) == 4 and [i.source for i in table.items][-1] == "a_0.npy"
    assert list(table.labels[-1]) == [0.0, 1.0] and table.lines[-1] == 6


def test_default_group():
    assert default_group("sone_Hor_scan_Run5_0000.tif") == "sone"
    assert default_group("dir/GISAXS_12.tif") == "gisaxs"
    assert default_group("ge_wppf.h5::/entry/data") == "ge"


@pytest.mark.skipif(not (REAL_DEV / "labels.tsv").is_file(), reason="no real-dev set")
def test_real_dev_table_reads_as_is():
    table = read_labels(REAL_DEV / "labels.tsv", REAL_DEV / "centres.tsv")
    assert len(table) == 15 and not table.skipped
    assert "Ring" in table.tags and "note" not in table.tags
    table.aligned(VOCABULARY)  # every tag is one of the shipped vocabulary


def test_labelled_frames_skip_unreadable(tmp_path, model_dir):
    labels = write_set(tmp_path, ROWS, HEADER)
    (tmp_path / "a_1.npy").write_bytes(b"not a numpy file")
    spec = ViewSpec.from_dict(ModelCard.read(model_dir).view_spec)
    frames = labelled_frames(read_labels(labels, tmp_path / "centres.tsv"), VOCABULARY, spec)
    assert len(frames) == 3 and len(frames.skipped) == 1
    assert "line 3" in frames.skipped[0] and "a_1.npy" in frames.skipped[0]
    assert frames.image.shape[1:] == spec.image_shape and frames.labels.shape == (3, 17)
    assert frames.groups == ["a", "b", "b"]
    for name in ["a_0", "b_0", "b_1"]:
        (tmp_path / f"{name}.npy").write_bytes(b"broken")
    with pytest.raises(NoFramesError, match="no labelled frame left"):
        labelled_frames(read_labels(labels, tmp_path / "centres.tsv"), VOCABULARY, spec)


def test_views_cache_is_reused(tmp_path, model_dir):
    labels = write_set(tmp_path, ROWS, HEADER)
    spec = ViewSpec.from_dict(ModelCard.read(model_dir).view_spec)
    table = read_labels(labels, tmp_path / "centres.tsv")
    first = labelled_frames(table, VOCABULARY, spec, cache=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("views_*.npz"))) == 1
    for name in ["a_0", "a_1", "b_0", "b_1"]:  # the files are not read again
        (tmp_path / f"{name}.npy").unlink()
    again = labelled_frames(table, VOCABULARY, spec, cache=tmp_path / "cache")
    assert np.array_equal(first.image, again.image) and first.sources == again.sources
    assert np.array_equal(first.labels, again.labels, equal_nan=True)


def test_views_cache_is_not_reused_by_other_code(tmp_path, model_dir, monkeypatch):
    """Views (and skipped rows) kept by another version of the code are made again."""
    labels = write_set(tmp_path, ROWS, HEADER)
    spec = ViewSpec.from_dict(ModelCard.read(model_dir).view_spec)
    table = read_labels(labels, tmp_path / "centres.tsv")
    labelled_frames(table, VOCABULARY, spec, cache=tmp_path / "cache")
    assert frames_module.views_code() == frames_module.views_code()  # stable in one version
    monkeypatch.setattr(frames_module, "views_code", lambda: "another version")
    (tmp_path / "a_1.npy").write_bytes(b"not a numpy file")  # read again: now skipped
    again = labelled_frames(table, VOCABULARY, spec, cache=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("views_*.npz"))) == 2
    assert len(again) == 3 and "a_1.npy" in again.skipped[0]


def test_evaluate_labels_writes_scores_and_plots(tmp_path, model_dir):
    labels = write_set(tmp_path, ROWS, HEADER)
    out = tmp_path / "eval"
    result = evaluate_labels(labels, model_dir, tmp_path / "centres.tsv", out)
    ring = next(r for r in result["per_tag"] if r["tag"] == "Ring")
    halo = next(r for r in result["per_tag"] if r["tag"] == "Halo")
    assert (ring["positives"], ring["negatives"], ring["unknown"]) == (2, 2, 0)
    assert (halo["positives"], halo["negatives"], halo["unknown"]) == (1, 2, 1)
    assert result["tags_scored"] == 2 and 0 <= result["mAP"] <= 1
    assert result["mAP"] == pytest.approx((ring["AP"] + halo["AP"]) / 2)
    for name in ["eval_labels.json", "pr_curves.png", "ap_by_tag.png", "reliability.png"]:
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "eval_labels.json").read_text())["images"] == 4
    with pytest.raises(ModelLoadError, match="does not load"):
        evaluate_labels(labels, tmp_path, tmp_path / "centres.tsv", out)


def test_evaluate_labels_command(tmp_path, model_dir, capsys):
    from scattertag.cli import main

    labels = write_set(tmp_path, [*ROWS, "c_0.npy\t1\t0\t"], HEADER)
    argv = ["evaluate", "--labels", str(labels), "--centres", str(tmp_path / "centres.tsv")]
    assert main([*argv, "--model", str(model_dir), "--out", str(tmp_path / "e")]) == 0
    captured = capsys.readouterr()
    assert "mAP" in captured.out and "Ring" in captured.out
    assert "1 row(s) skipped" in captured.err and "line 6" in captured.err
