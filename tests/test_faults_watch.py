"""Faults in --watch and the crash-safe appending writer: stalls, locks, deletions, full disks."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import BEAM, frame, tmpfs
from scattertag.io.atomic import AppendingCSV
from scattertag.prediction import watch as watch_module
from scattertag.prediction.table import read_csv
from scattertag.prediction.watch import FolderScanner, watch


def run_watch(folder, out, predictor, **kwargs):
    stop, result = threading.Event(), {}
    options = {"beam_center": BEAM, "model": predictor, "interval": 0.05, "settle": 0.0}
    options.update(kwargs)
    thread = threading.Thread(
        target=lambda: result.setdefault("code", watch(folder, out, stop=stop, **options))
    )
    thread.start()
    return stop, thread, result


def wait_until(condition, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_a_stalled_writer_is_retried_not_given_a_final_error(tmp_path, predictor):
    folder, out = tmp_path / "det", tmp_path / "p.csv"
    folder.mkdir()
    full = tmp_path / "full.npy"
    np.save(full, frame(4))
    data = full.read_bytes()
    (folder / "a.npy").write_bytes(data[: len(data) // 2])  # the writer stalls half-way
    stop, thread, result = run_watch(folder, out, predictor, patience=3.0)
    time.sleep(1.0)  # many scans: the half file is read, fails, and is kept for later
    assert read_csv(out) == []
    with open(folder / "a.npy", "ab") as f:  # the writer resumes
        f.write(data[len(data) // 2 :])
    wait_until(lambda: len(read_csv(out)) == 1)
    stop.set()
    thread.join(30)
    rows = read_csv(out)
    assert rows[0]["error"] == "" and result["code"] == 0


def test_a_file_deleted_during_a_scan_does_not_stop_the_watcher(tmp_path, monkeypatch):
    for name in ("a.npy", "b.npy"):
        np.save(tmp_path / name, frame(0))
    real_scandir = os.scandir

    def scandir_then_delete(path):
        entries = list(real_scandir(path))
        (tmp_path / "a.npy").unlink(missing_ok=True)  # the detector software removes it now
        return iter(entries)

    scanner = FolderScanner(tmp_path, settle=0)
    scanner.scan()
    monkeypatch.setattr(watch_module.os, "scandir", scandir_then_delete)
    assert scanner.scan() == [str(tmp_path / "b.npy")]
    assert not scanner.accept(str(tmp_path / "a.npy"), [{"error": "a.npy: file not found"}])


def test_a_folder_named_relative_and_absolute_is_the_same(tmp_path, monkeypatch):
    np.save(tmp_path / "a.npy", frame(0))
    monkeypatch.chdir(tmp_path.parent)
    scanner = FolderScanner(tmp_path.name, done={str(tmp_path / "a.npy")}, settle=0)
    assert scanner.scan() == scanner.scan() == []
    relative = FolderScanner(tmp_path.name, done={f"{tmp_path.name}/a.npy"}, settle=0)
    assert relative.scan() == relative.scan() == []


def test_hdf5_locked_by_its_writer_is_retried(tmp_path, predictor):
    folder, out = tmp_path / "det", tmp_path / "p.csv"
    folder.mkdir()
    path = folder / "scan.h5"
    code = (
        "import h5py, numpy, sys, time\n"
        f"f = h5py.File({str(path)!r}, 'w')\n"
        f"f['data'] = numpy.load({str(tmp_path / 'f.npy')!r})\n"
        "f.flush(); print('open', flush=True); sys.stdin.readline(); f.close()\n"
    )
    np.save(tmp_path / "f.npy", frame(5))
    writer = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline().strip() == "open"
    time.sleep(0.1)  # file settled
    stop, thread, _ = run_watch(folder, out, predictor, patience=0.0)
    time.sleep(1.0)  # many scans while the writer holds the lock
    assert read_csv(out) == []
    writer.communicate("close\n", timeout=30)
    wait_until(lambda: len(read_csv(out)) == 1)
    stop.set()
    thread.join(30)
    assert read_csv(out)[0]["error"] == ""


def test_appending_csv_repairs_a_partial_line_and_writes_whole_rows(tmp_path):
    path = tmp_path / "live.csv"
    path.write_text("path,frame\na.npy,0\nb.np")  # a crash in the middle of a row
    with AppendingCSV(path, "path,frame\n") as f:
        assert f.repaired == len("b.np")
        f.append("c.npy,0\n")
    assert path.read_text() == "path,frame\na.npy,0\nc.npy,0\n"
    path.write_text("path,fr")  # even the header
    with AppendingCSV(path, "path,frame\n") as f:
        f.append("d.npy,0\n")
    assert path.read_text() == "path,frame\nd.npy,0\n"


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "disk"
    tmpfs(folder, "64k")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_full_disk_never_leaves_half_a_row(small_disk):
    path = small_disk / "live.csv"
    with AppendingCSV(path, "path,frame\n") as f:
        row = "x" * 1000 + ",0\n"
        with pytest.raises(OSError):  # 200 kB onto a 64 kB disk
            f.append(row * 200)
        for _ in range(200):  # then row by row until the disk is full mid-row
            try:
                f.append(row)
            except OSError:
                break
        else:
            raise AssertionError("a 64 kB disk took 200 kB of rows")
    text = path.read_text()
    assert text.endswith("\n") and set(text.splitlines()[1:]) == {row.strip()}


def test_full_disk_output_refused_before_work(small_disk, tmp_path, model_dir, capsys):
    from scattertag.cli import main

    (small_disk / "filler").write_bytes(b"\0" * 60_000)
    np.save(tmp_path / "f.npy", frame(0))
    code = main(
        [
            "predict",
            str(tmp_path / "f.npy"),
            "--beam-center",
            *map(str, BEAM),
            "--model",
            str(model_dir),
            "--out",
            str(small_disk / "p.csv"),
            "--quiet",
        ]
    )
    assert code == 2
    assert "free" in capsys.readouterr().err
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]
