"""scattertag build and inspect on the command line: summary, montage, checksum verification."""

from __future__ import annotations

from scattertag.cli import main
from scattertag.data import read_manifest
from scattertag.data.manifest import shard_name


def test_build_then_inspect_reports_and_verifies(tmp_path, capsys):
    argv = [
        "build",
        "--out",
        str(tmp_path),
        "--size",
        "32",
        "--experiments",
        "10",
        "--images-per-experiment",
        "2",
        "--input-size",
        "16",
        "--workers",
        "1",
        "--keep-raw",
        "--quiet",
    ]
    assert main(argv) == 0
    assert "20 images in 10 shards" in capsys.readouterr().out
    manifest = read_manifest(tmp_path)
    assert manifest["image_shape"] == [32, 32] and manifest["keep_raw"]
    assert manifest["input_shape"] == [4, 64, 256]  # the default image view is the cake

    assert main(["inspect", str(tmp_path), "--montage", str(tmp_path / "m.png")]) == 0
    out = capsys.readouterr().out
    assert "checksums: all 10 shards match" in out and "Circular Beamstop" in out
    assert (tmp_path / "m.png").stat().st_size > 10_000

    path = tmp_path / shard_name(3)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # flip one byte
    path.write_bytes(bytes(data))
    assert main(["inspect", str(tmp_path), "--montage", str(tmp_path / "m.png")]) == 1
    assert "batch_03.h5: SHA-256 mismatch" in capsys.readouterr().err


def test_bad_arguments(tmp_path, capsys):
    assert main(["inspect", str(tmp_path)]) == 1
    assert "no manifest" in capsys.readouterr().err
    assert main(["build", "--out", str(tmp_path), "--experiments", "4"]) == 1
    assert "experiments must be an integer >= 10, got 4" in capsys.readouterr().err
