"""Watching a folder: complete files only, each tagged once, also across restarts."""

import threading
import time

import numpy as np

from conftest import BEAM, frame
from scattertag.prediction.table import read_csv
from scattertag.prediction.watch import FolderScanner, watch


def test_scanner_waits_until_a_file_stops_growing(tmp_path):
    scanner = FolderScanner(tmp_path, settle=0)
    path = tmp_path / "a.npy"
    path.write_bytes(b"first half")
    assert scanner.scan() == []  # first sighting
    with open(path, "ab") as f:
        f.write(b" and the rest")
    assert scanner.scan() == []  # still growing
    assert scanner.scan() == [str(path)]  # unchanged since the last scan
    assert scanner.accept(str(path), [{"error": ""}])
    scanner.done.add(str(path))
    assert scanner.scan() == []  # never twice
    (tmp_path / "notes.txt").write_text("not a detector file")
    assert scanner.scan() == scanner.scan() == []
    patient = FolderScanner(tmp_path, settle=3600)  # files must also be an hour old
    assert patient.scan() == patient.scan() == []


def wait_for_rows(path, count, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and len(read_csv(path)) >= count:
            return read_csv(path)
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {count} rows in {timeout} s")


def run_watch(folder, out, predictor, stop):
    result = {}
    kwargs = {"beam_center": BEAM, "model": predictor, "interval": 0.05, "settle": 0.0}
    kwargs.update(patience=0.0, stop=stop)
    thread = threading.Thread(
        target=lambda: result.setdefault("code", watch(folder, out, **kwargs))
    )
    thread.start()
    return thread, result


def test_watch_tags_new_files_once_and_resumes(tmp_path, predictor):
    folder, out = tmp_path / "detector", tmp_path / "p.csv"
    folder.mkdir()
    np.save(folder / "f0.npy", np.stack([frame(0), frame(1)]))
    stop = threading.Event()
    thread, result = run_watch(folder, out, predictor, stop)
    np.save(folder / "f1.npy", frame(2))
    rows = wait_for_rows(out, 3)
    time.sleep(0.3)  # a few more scans: nothing is tagged again
    stop.set()
    thread.join(30)
    assert result["code"] == 0
    rows = read_csv(out)
    assert sorted((r["path"].rsplit("/", 1)[-1], r["frame"]) for r in rows) == [
        ("f0.npy", "0"),
        ("f0.npy", "1"),
        ("f1.npy", "0"),
    ]
    # a restart appends only the files that are new since
    np.save(folder / "f2.npy", frame(3))
    (folder / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    stop = threading.Event()
    thread, result = run_watch(folder, out, predictor, stop)
    rows = wait_for_rows(out, 5)
    time.sleep(0.3)
    stop.set()
    thread.join(30)
    assert result["code"] == 1  # broken.npy failed
    names = [r["path"].rsplit("/", 1)[-1] for r in read_csv(out)]
    assert sorted(names) == ["broken.npy", "f0.npy", "f0.npy", "f1.npy", "f2.npy"]


def test_scanner_takes_an_eiger_master_not_its_data_files(tmp_path):
    import h5py

    data = frame(3)[None]
    with h5py.File(tmp_path / "s_data_000001.h5", "w") as f:
        f.create_dataset("entry/data/data", data=data)
    with h5py.File(tmp_path / "s_master.h5", "w") as f:
        f["entry/data/data_000001"] = h5py.ExternalLink("s_data_000001.h5", "entry/data/data")
    (tmp_path / "README.md").write_text("notes")
    scanner = FolderScanner(tmp_path, settle=0)
    assert scanner.scan() == []  # first sighting
    assert scanner.scan() == [str(tmp_path / "s_master.h5")]
