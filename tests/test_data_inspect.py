"""scattertag inspect: summary, montage and checksum verification."""

from __future__ import annotations

from scattertag.cli import main
from scattertag.data.manifest import shard_name
from test_data_build import build


def test_inspect_reports_and_verifies(tmp_path, capsys):
    build(tmp_path, keep_raw=True)
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


def test_inspect_not_a_dataset(tmp_path, capsys):
    assert main(["inspect", str(tmp_path)]) == 1
    assert "no manifest" in capsys.readouterr().err
