"""scattertag build and inspect on the command line: summary, montage, checksum verification."""

from __future__ import annotations

from conftest import build_small
from scattertag.cli import main
from scattertag.data import read_dataset_manifest
from scattertag.data.manifest import shard_name
from scattertag.features.views import ViewSpec


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
    manifest = read_dataset_manifest(tmp_path)
    assert manifest.image_shape == [32, 32] and manifest.keep_raw
    assert manifest.input_shape == [4, 64, 256]  # the default image view is the cake

    assert main(["inspect", str(tmp_path), "--montage", str(tmp_path / "m.png")]) == 0
    out = capsys.readouterr().out
    assert "checksums: all 10 shards match" in out and "Circular Beamstop" in out
    assert (tmp_path / "m.png").stat().st_size > 10_000

    path = tmp_path / shard_name(3)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # flip one byte
    path.write_bytes(bytes(data))
    assert main(["inspect", str(tmp_path), "--montage", str(tmp_path / "m.png")]) == 1
    assert "shard_03.h5: SHA-256 mismatch" in capsys.readouterr().err


def test_inspect_a_default_cake_dataset(tmp_path, capsys):
    """Without --keep-raw the montage draws the stored cake images (azimuth x log radius)."""
    build_small(tmp_path, spec=ViewSpec(input_size=16, orders=4, zeros=6, fb_size=32))
    assert read_dataset_manifest(tmp_path).input_shape == [4, 64, 256]
    assert main(["inspect", str(tmp_path), "--montage", str(tmp_path / "m.png")]) == 0
    assert "checksums: all 10 shards match" in capsys.readouterr().out
    assert (tmp_path / "m.png").stat().st_size > 10_000


def test_bad_arguments(tmp_path, capsys):
    assert main(["inspect", str(tmp_path)]) == 2
    (err,) = capsys.readouterr().err.splitlines()
    assert err.startswith("scattertag inspect: error: ") and "no manifest" in err
    assert main(["build", "--out", str(tmp_path), "--experiments", "4"]) == 2
    (err,) = capsys.readouterr().err.splitlines()
    assert err == "scattertag build: error: experiments must be an integer >= 10, got 4"
