"""The command line's exit status, the same for every command.

0 all done; 1 some inputs failed; 2 bad arguments or unusable input, reported as one line
``scattertag COMMAND: error: ...`` on stderr and never a traceback.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import scattertag.demo
from scattertag import __version__
from scattertag.cli import COMMANDS, main
from scattertag.examples import example_frames


def bad_invocations(tmp_path):
    """command -> argv that must exit 2: a value the library refuses (unusable input)."""
    empty = str(tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    np.save(tmp_path / "a.npy", np.ones((16, 16), np.int32))
    frame = str(tmp_path / "a.npy")
    return {
        "preview": ["preview", "--count", "0"],
        "fb": ["fb"],  # nothing to draw
        "build": ["build", "--out", str(tmp_path / "d"), "--experiments", "4"],
        "inspect": ["inspect", empty],  # no manifest
        "train": ["train", "--data", empty, "--view", "image", "--out", str(tmp_path / "r")],
        "evaluate": ["evaluate", "--data", empty, "--model", empty],
        "study": ["study", "resolution", "--sizes", "32", "--out", str(tmp_path / "s")],
        "demo": ["demo", "--size", "64", "--out", str(tmp_path / "demo")],
        "predict": ["predict", frame, "--pixel-size-um", "0"],  # no such detector
        "show": ["show", frame, "--pixel-size-um", "0", "--out", str(tmp_path / "s.png")],
        "finetune": ["finetune", "--labels", str(tmp_path / "none.tsv"), "--out", empty],
        "serve": ["serve", "--folder", str(tmp_path / "none"), "--port", "0"],
        "calibrate": ["calibrate", "--model", empty, "--data", empty, "--out", empty],
    }


def test_every_command_is_covered(tmp_path):
    assert set(bad_invocations(tmp_path)) == set(COMMANDS)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_unusable_input_exits_2_with_one_line(command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a command's default outputs (predictions.csv) land here
    argv = bad_invocations(tmp_path)[command]
    assert main(argv) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith(f"scattertag {command}: error: ") and "Traceback" not in captured.err


@pytest.mark.parametrize("command", list(COMMANDS))
def test_bad_arguments_exit_2_with_one_line(command, capsys):
    assert main([command, "--no-such-option"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"scattertag {command}: error: ")
    assert "unrecognized arguments: --no-such-option" in line or "required" in line


def test_no_command_version_and_unknown_command(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"scattertag {__version__}"
    assert main(["frobnicate"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("scattertag: error: argument COMMAND: invalid choice: 'frobnicate'")


def test_library_bugs_still_show_a_traceback(monkeypatch, tmp_path):
    """Only bad input is reported as one line: a programming error propagates."""

    def broken(*args):
        raise TypeError("a bug")

    monkeypatch.setattr(scattertag.demo, "tag_examples", broken)
    with pytest.raises(TypeError, match="a bug"):
        main(["demo", "--out", str(tmp_path / "demo")])


def test_success_exits_0(tmp_path, monkeypatch, capsys):
    out = tmp_path / "p.png"
    assert main(["preview", "--size", "64", "--count", "2", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    out = tmp_path / "fb.png"
    np.save(tmp_path / "f.npy", np.random.default_rng(0).poisson(20, (64, 80)).astype(np.int32))
    np.save(tmp_path / "m.npy", np.eye(64, 80, dtype=np.uint8))  # nonzero = excluded
    argv = ["fb", str(tmp_path / "f.npy"), "--beam-center", "30", "20", "--mask"]
    argv += [str(tmp_path / "m.npy"), "--simulated", "1", "--size", "64", "--orders", "4"]
    assert main([*argv, "--zeros", "4", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    rows = [{"size": 256, "view": v, "test_mAP": 0.5, "test_images": 1} for v in ("image",)]
    for row in rows:
        row.update(build_s=1.0, train_s=1.0, evaluate_s=1.0)
    monkeypatch.setattr(scattertag.demo, "three_views", lambda *args: rows)
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    printed = capsys.readouterr().out
    assert "| 256 | image | 0.5000 | 1 |" in printed
    # the demo's first step tags every bundled real frame with the shipped model
    tagged = list(csv.DictReader((tmp_path / "demo" / "examples.csv").open()))
    assert len(tagged) == len(example_frames()) and not any(r["error"] for r in tagged)
    assert (tmp_path / "demo" / "examples.png").stat().st_size > 10_000
    assert all(Path(r["path"]).name in printed for r in tagged)


def test_some_inputs_failed_exits_1(tmp_path, model_dir, capsys):
    """A file that cannot be tagged among good ones: the rest are tagged, status 1."""
    np.save(tmp_path / "good.npy", np.random.default_rng(0).poisson(50, (90, 120)))
    (tmp_path / "bad.npy").write_bytes(b"not a numpy file")
    argv = ["--beam-center", "20", "70", "--model", str(model_dir)]
    files = [str(tmp_path / "good.npy"), str(tmp_path / "bad.npy")]
    assert main(["predict", *files, *argv, "--out", str(tmp_path / "t.csv")]) == 1
    assert "1 of 2 frames tagged" in capsys.readouterr().out
    assert main(["show", files[1], *argv, "--out", str(tmp_path / "s.png")]) == 1
    assert main(["show", files[0], *argv, "--out", str(tmp_path / "s.png")]) == 0


def test_fb_geometry_is_the_prediction_geometry(tmp_path):
    """fb's beam centre and detector values go through GeometryOptions, as predict's and show's."""
    from scattertag.cli import build_parser
    from scattertag.cli.predict import geometry_options
    from scattertag.plots.fourier_bessel import frame_geometry

    parser, _ = build_parser("fb")
    args = parser.parse_args(["fb", "a.tif", "--beam-center", "30", "20", "--pixel-size-um", "172"])
    geometry = frame_geometry(geometry_options(args), (64, 80))
    assert geometry.beam_center == (30.0, 20.0) and geometry.pixel_size == pytest.approx(172e-6)
    no_centre = geometry_options(parser.parse_args(["fb", "a.tif"]))
    assert frame_geometry(no_centre, (64, 80)).beam_center == (39.5, 31.5)  # the frame centre
