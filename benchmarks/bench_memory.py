"""Peak memory of ``scattertag predict`` per frame shape, against the documented bound.

Each shape is written as a ``.npy`` frame (Poisson counts of a ring pattern about the beam
centre) and tagged by ``scattertag predict FILE --workers 0`` in a fresh process; its peak
resident set (``ru_maxrss`` from ``os.wait4``) is printed beside the pixel count and the
bound of :func:`scattertag.io.readers.memory_bound` (README, "Tagging in depth"):

    python benchmarks/bench_memory.py                                  # 256 x 8192, 512 x 16384
    python benchmarks/bench_memory.py --shapes 195x1475 2000x2000 --centre given
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from scattertag.io.readers import memory_bound


def write_frame(path: Path, shape: tuple[int, int], centre: tuple[float, float]) -> None:
    """A uint32 frame of ``shape``: Poisson counts of rings about ``centre``, written in bands."""
    rows, cols = shape
    rng = np.random.default_rng(0)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint32, shape=shape)
    x = np.arange(cols) - centre[0]
    for lo in range(0, rows, 64):  # bands of rows keep this script's own memory small
        y = np.arange(lo, min(rows, lo + 64))[:, None] - centre[1]
        r = np.hypot(x[None, :], y)
        out[lo : lo + len(y)] = rng.poisson(20 + 500 * np.cos(r / 15) ** 8 + 1e4 / (1 + r))
    out.flush()
    del out


def peak_rss_mib(argv: list[str]) -> tuple[float, int]:
    """(peak resident set in MiB, exit status) of a command run in a fresh process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.setdefault("SCATTERTAG_CACHE", "off")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        sys.stderr.write(err.decode(errors="replace"))
    return usage.ru_maxrss / 1024, proc.returncode


def parse_shape(text: str) -> tuple[int, int]:
    """'256x8192' -> (256, 8192)."""
    rows, cols = text.lower().split("x")
    return int(rows), int(cols)


def main() -> None:
    """Tag each shape in a fresh process and print its peak RSS beside the bound."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["256x8192", "512x16384"], type=parse_shape)
    parser.add_argument(
        "--centre",
        choices=["given", "estimated"],
        default="given",
        help="give the beam centre (the middle of the frame) or let predict estimate it",
    )
    args = parser.parse_args()
    print(f"{'frame':>13} {'Mpx':>6} {'peak RSS MiB':>13} {'bound MiB':>10}  exit")
    with tempfile.TemporaryDirectory() as tmp:
        for shape in [(64, 64), *args.shapes]:
            centre = (shape[1] / 2 - 0.5, shape[0] / 2 - 0.5)
            path = Path(tmp) / f"frame_{shape[0]}x{shape[1]}.npy"
            write_frame(path, shape, centre)
            argv = [sys.executable, "-m", "scattertag", "predict", str(path), "--workers", "0"]
            argv += ["--out", str(Path(tmp) / "rows.csv")]
            if args.centre == "given":
                argv += ["--beam-center", str(centre[0]), str(centre[1])]
            rss, status = peak_rss_mib(argv)
            bound = memory_bound(*shape) / 2**20
            mpx = shape[0] * shape[1] / 1e6
            label = f"{shape[0]} x {shape[1]}"
            print(f"{label:>13} {mpx:6.2f} {rss:13.0f} {bound:10.0f}  {status}", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
