"""Faults in predict: any exception of one file is its row, stuck workers, outputs, signals."""

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import Future
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import BEAM, SRC, alive, descendants, frame, spawned
from scattertag.cli import main
from scattertag.geometry import GeometryOptions
from scattertag.io.readers import ReadError, count_frames
from scattertag.prediction.pipeline import Workers, tag_items
from scattertag.prediction.sources import items_from_paths
from scattertag.prediction.table import read_csv
from scattertag.signals import Terminated, result_between_signals, terminate_on_signals


def nexus_file(path: Path) -> bytes:
    """A small NeXus-style HDF5 stack; returns its bytes."""
    with h5py.File(path, "w") as f:
        g = f.create_group("entry/data")
        g.attrs["NX_class"] = "NXdata"
        g.attrs["signal"] = "data"
        data = np.stack([frame(0), frame(1)])
        g.create_dataset("data", data=data, chunks=(1, *data.shape[1:]), compression="gzip")
    return path.read_bytes()


def corrupt_metadata_file(folder: Path) -> Path:
    """An HDF5 file with one flipped metadata bit that makes h5py raise something not ReadError."""
    raw = nexus_file(folder / "base.h5")
    path = folder / "corrupt.h5"
    for offset in range(96, 512):
        data = bytearray(raw)
        data[offset] ^= 1
        path.write_bytes(bytes(data))
        try:
            count_frames(path)
        except ReadError:
            continue
        except Exception:
            return path
    pytest.skip("no single-bit metadata flip raised a non-ReadError with this HDF5 version")


@pytest.mark.parametrize("workers", [0, 2])
def test_any_exception_of_one_file_becomes_its_row(tmp_path, model_dir, workers):
    bad = corrupt_metadata_file(tmp_path)
    good = tmp_path / "good.npy"
    np.save(good, frame(3))
    out = tmp_path / "p.csv"
    args = [str(good), str(bad), str(good), "--beam-center", *map(str, BEAM)]
    code = main(
        [
            "predict",
            *args,
            "--model",
            str(model_dir),
            "--out",
            str(out),
            "--quiet",
            "--workers",
            str(workers),
        ]
    )
    assert code == 1  # some rows failed, the run finished
    rows = read_csv(out)
    assert [Path(r["path"]).name for r in rows] == ["good.npy", "corrupt.h5", "good.npy"]
    assert rows[1]["error"].startswith(str(bad)) and not rows[0]["error"] and not rows[2]["error"]


def hanging_hdf5(folder: Path) -> Path:
    """An HDF5 file on which the HDF5 library loops forever reading an attribute, if it does."""
    path = folder / "base.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("entry/data")
        g.attrs["NX_class"] = "NXdata"
        g.attrs["signal"] = "data"
        data = np.random.default_rng(0).poisson(5, (2, 32, 32)).astype(np.int32)
        g.create_dataset("data", data=data, chunks=(1, 32, 32), compression="gzip")
    raw = bytearray(path.read_bytes())
    rng = np.random.default_rng(1)
    for _ in range(231):  # mutation 230 of this seeded sequence hangs HDF5 1.14
        offset, bit = int(rng.integers(0, min(len(raw), 4096))), int(rng.integers(8))
    raw[offset] ^= 1 << bit
    bad = folder / "hang.h5"
    bad.write_bytes(bytes(raw))
    probe = [
        sys.executable,
        "-c",
        f"from scattertag.io.readers import count_frames as c; c({str(bad)!r})",
    ]
    try:
        subprocess.run(probe, timeout=5, capture_output=True, env={**os.environ, "PYTHONPATH": SRC})
    except subprocess.TimeoutExpired:
        return bad
    pytest.skip("this HDF5 version does not hang on the mutated file")


def test_a_stuck_worker_costs_one_row(tmp_path, predictor):
    good = tmp_path / "good.npy"
    np.save(good, frame(3))
    bad = hanging_hdf5(tmp_path)
    items = items_from_paths([str(good), str(bad), str(good)], GeometryOptions(BEAM))
    start = time.time()
    with Workers(predictor.view_spec, workers=1, timeout=4) as prepare:
        rows = list(tag_items(items, predictor, prepare))
    assert time.time() - start < 60
    assert [bool(r["error"]) for r in rows] == [False, True, False]
    assert rows[1]["error"].startswith(str(bad)) and "took over 4 s" in rows[1]["error"]


@pytest.mark.timeout(120, method="thread")
def test_sigterm_lost_in_a_finalizer_still_stops_predicts_wait(tmp_path, predictor):
    """SIGTERM whose Terminated a finalizer swallowed ("Exception ignored"), then a stuck file:
    predict's wait raises Terminated at once, not an error row after the item's 30 s timeout
    (it waited with future.result(timeout) before)."""
    bad = hanging_hdf5(tmp_path)
    items = items_from_paths([str(bad)], GeometryOptions(BEAM))

    class Finalized:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)  # the handler runs here, its Terminated ignored

    with terminate_on_signals(), Workers(predictor.view_spec, workers=1, timeout=30) as prepare:
        Finalized()  # dropped at once: SIGTERM's handler runs inside __del__
        start = time.time()
        with pytest.raises(Terminated):
            list(tag_items(items, predictor, prepare))
    assert time.time() - start < 15


def test_result_between_signals_times_out_like_result():
    """A wait with a timeout raises TimeoutError after about that long; a done future's result
    comes back at once."""
    pending: Future = Future()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        result_between_signals(pending, 0.3, poll=0.1)
    assert 0.25 < time.monotonic() - start < 5
    done: Future = Future()
    done.set_result(7)
    assert result_between_signals(done, 0.0) == 7


class FinishesDuringTheWait(Future):
    """A future whose timed wait runs out just as its task finishes (as Dask's can)."""

    def result(self, timeout: float | None = None) -> int:
        if timeout is not None and not self.done():
            self.set_result(7)
            raise TimeoutError(f"timed out after {timeout} s.")
        return super().result(timeout)


def test_result_between_signals_returns_a_result_that_came_as_the_wait_ran_out():
    """A task that finished as one poll's wait ran out gives its result, not a TimeoutError;
    a task that raised TimeoutError itself still raises it."""
    assert result_between_signals(FinishesDuringTheWait(), 10.0, poll=0.1) == 7
    own: Future = Future()
    own.set_exception(TimeoutError("the task's own"))
    with pytest.raises(TimeoutError, match="the task's own"):
        result_between_signals(own, 10.0, poll=0.1)


def predict_one(path: Path, model_dir: Path, out: Path, *extra: str) -> int:
    """Exit status of ``scattertag predict PATH [EXTRA]`` with the test model, writing ``out``."""
    argv = ["predict", str(path), "--beam-center", *map(str, BEAM), "--model", str(model_dir)]
    return main([*argv, "--out", str(out), "--quiet", *extra])


@pytest.mark.timeout(120, method="thread")  # a header read in this process hangs for good
def test_timeout_flag_gives_a_stuck_file_its_row(tmp_path, model_dir):
    """``--timeout`` (seconds a file may take in a worker) reaches the workers, and headers
    are read where a stuck one costs only its file (not in this process)."""
    bad = hanging_hdf5(tmp_path)
    out = tmp_path / "rows.csv"
    start = time.time()
    assert predict_one(bad, model_dir, out, "--workers", "1", "--timeout", "3") == 1
    assert time.time() - start < 60
    (row,) = read_csv(out)
    assert row["error"].startswith(str(bad)) and "took over 3 s" in row["error"]


def test_timeout_without_worker_processes_is_refused(tmp_path, model_dir, capsys):
    """In this process nothing stops a reader stuck in C, so ``--timeout`` needs workers."""
    path = tmp_path / "f.npy"
    np.save(path, frame(0))
    assert predict_one(path, model_dir, tmp_path / "p.csv", "--workers", "0", "--timeout", "3") == 2
    assert "a timeout needs worker processes (workers >= 1)" in capsys.readouterr().err


def test_out_equal_to_an_input_is_refused(tmp_path, model_dir, capsys):
    path = tmp_path / "f.npy"
    np.save(path, frame(0))
    before = path.read_bytes()
    code = predict_one(path, model_dir, tmp_path / "." / "f.npy")
    assert code == 2
    assert "is also an input file" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_unwritable_output_refused_before_any_work(tmp_path, model_dir, capsys):
    path = tmp_path / "f.npy"
    np.save(path, frame(0))
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    code = predict_one(path, model_dir, blocker / "p.csv")
    assert code == 2
    assert "cannot create its folder" in capsys.readouterr().err
    assert not list(tmp_path.glob("**/*.tmp"))


def predict_with_workers(tmp_path, model_dir, stderr) -> tuple[subprocess.Popen, Path, list]:
    """``scattertag predict`` on 400 frames, each named 10 times, with 2 workers, started in
    a child process; returns once its workers run: (process, output CSV path, the worker
    pids). The 4000 frames are many more than it tags before the test signals it, even on
    an idle machine (it tags ~500 a second there: 400 were done before the signal)."""
    for i in range(400):
        np.save(tmp_path / f"f{i:02d}.npy", frame(i, shape=(300, 300)))
    out = tmp_path / "p.csv"
    files = sorted(map(str, tmp_path.glob("*.npy"))) * 10
    cmd = [sys.executable, "-m", "scattertag", "predict", *files, "--beam-center", "150", "150"]
    cmd += ["--model", str(model_dir), "--out", str(out), "--workers", "2", "--quiet"]
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stderr=stderr, text=True)
    deadline = time.time() + 60
    while len(spawned(proc.pid)) < 2 and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    return proc, out, descendants(proc.pid)


def test_sigterm_stops_predict_and_its_workers(tmp_path, model_dir):
    sig = signal.SIGTERM
    proc, out, workers = predict_with_workers(tmp_path, model_dir, subprocess.PIPE)
    assert len(workers) >= 2, "workers did not start"
    proc.send_signal(sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 128 + sig
    time.sleep(0.5)
    assert not [p for p in workers if alive(p)], "workers still running after the parent ended"
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


def test_kill_9_leaves_no_half_file_and_workers_exit(tmp_path, model_dir):
    proc, out, workers = predict_with_workers(tmp_path, model_dir, subprocess.DEVNULL)
    proc.kill()
    proc.wait()
    deadline = time.time() + 20
    while [p for p in workers if alive(p)] and time.time() < deadline:
        time.sleep(0.2)
    assert not [p for p in workers if alive(p)], "orphaned workers survive kill -9 of the parent"
    assert not out.exists()
