"""Faults in build: a full disk gives a clean message (no crash at exit), SIGTERM stops workers."""

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future

import pytest

from conftest import SRC, alive, descendants, spawned, tmpfs
from scattertag.signals import Terminated, result_between_signals, terminate_on_signals

SMALL = [
    "--size",
    "128",
    "--experiments",
    "10",
    "--images-per-experiment",
    "4",
    "--input-size",
    "32",
    "--zeros",
    "8",
    "--orders",
    "4",
    "--quiet",
]
ENV = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}


def build(out, *extra, **kwargs):
    cmd = [sys.executable, "-m", "scattertag", "build", "--out", str(out), *SMALL, *extra]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120, **kwargs)


def test_build_on_a_full_disk_fails_cleanly(tmp_path):
    disk = tmp_path / "disk"
    tmpfs(disk, "4m")
    try:
        done = build(disk / "d", "--keep-raw", "--workers", "1")
        assert done.returncode == 2, done.stderr[-2000:]  # unusable output; not 139 (segfault)
        assert "no space left on device" in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        names = sorted(p.name for p in (disk / "d").iterdir())
        assert "shard_00.h5" in names and not [n for n in names if n.endswith(".tmp")]
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_sigterm_stops_build_and_its_workers(tmp_path):
    out = tmp_path / "d"
    cmd = [
        sys.executable,
        "-m",
        "scattertag",
        "build",
        "--out",
        str(out),
        "--size",
        "256",
        "--experiments",
        "400",  # minutes of work, so the signal always lands mid-build (it is stopped early)
        "--images-per-experiment",
        "4",
        "--workers",
        "2",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, env=ENV, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while len(spawned(proc.pid)) < 2 and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    workers = descendants(proc.pid)
    assert len(workers) >= 2, "workers did not start"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("build did not stop within 20 s of SIGTERM")
    assert proc.returncode == 128 + signal.SIGTERM
    time.sleep(0.5)
    assert not [p for p in workers if alive(p)], "workers still running after the build ended"
    assert not list(out.glob("*.tmp"))


def test_sigterm_whose_exception_a_finalizer_lost_still_stops_the_wait():
    """SIGTERM's handler running inside a finalizer loses its exception ("Exception ignored"):
    the wait for a task that ends 2 s later still raises Terminated, not the task's result."""
    future: Future = Future()
    timer = threading.Timer(2.0, future.set_result, ["done"])
    timer.start()
    try:
        with terminate_on_signals():

            class Finalized:
                def __del__(self):
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(0.1)  # the handler runs here, its Terminated ignored

            Finalized()
            with pytest.raises(Terminated):
                result_between_signals(future, poll=0.1)
    finally:
        timer.cancel()
