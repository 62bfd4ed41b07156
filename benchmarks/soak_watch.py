"""Soak test of ``scattertag predict --watch``: writers, stalls, renames, deletions, kill -9.

    python benchmarks/soak_watch.py  # 2,000 files, 4 writers, 5 min
    python benchmarks/soak_watch.py --files 200 --minutes 1 --size 128  # a quick run

``--writers`` threads write ``--files`` detector files (NumPy and Deflate TIFF, chosen at
random) into a folder over about ``--minutes`` minutes: some in pieces with random stalls
(up to ``--stall`` s) half-way, some under a temporary name then renamed, some deleted
after they are complete, some deleted half-written. The watcher runs as its own process
and is killed with SIGKILL once half-way and restarted with the same command. At the
end it is stopped with SIGTERM and the CSV is checked: it parses, every completed file
that was kept has exactly one row, none has an error (no half-read file), and no file has
two rows. Localhost files only; everything stays under ``--dir``.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image


def frame_bytes(rng: np.random.Generator, size: int, kind: str) -> bytes:
    """A Poisson frame with a ring, as the bytes of a .npy or a Deflate .tif file."""
    rows, cols = np.indices((size, size))
    r = np.hypot(cols - size / 2, rows - size / 2)
    counts = rng.poisson(20 + 400 * np.exp(-0.5 * ((r - size / 4) / 3) ** 2)).astype(np.int32)
    buffer = io.BytesIO()
    if kind == "npy":
        np.save(buffer, counts)
    else:
        Image.fromarray(counts).save(buffer, format="TIFF", compression="tiff_adobe_deflate")
    return buffer.getvalue()


def writer(folder: Path, names: list[str], seconds: float, args, seed: int, log: dict) -> None:
    """Write ``names`` into ``folder`` spread over ``seconds``, with stalls, renames, deletions."""
    rng = np.random.default_rng(seed)
    pause = seconds / max(len(names), 1)
    for name in names:
        kind = "npy" if name.endswith(".npy") else "tif"
        data = frame_bytes(rng, args.size, kind)
        path = folder / name
        how = rng.choice(
            ["stall", "rename", "plain", "delete", "abandon"], p=[0.4, 0.2, 0.3, 0.05, 0.05]
        )
        if how == "rename":
            tmp = folder / (name + ".part")  # not a detector suffix: never tagged
            tmp.write_bytes(data)
            os.replace(tmp, path)
        else:
            with open(path, "wb") as f:
                half = int(rng.integers(1, len(data)))
                f.write(data[:half])
                f.flush()
                if how in ("stall", "abandon"):
                    time.sleep(float(rng.uniform(0, args.stall)))
                if how == "abandon":  # the detector software gives up and removes it
                    f.close()
                    path.unlink()
                    log["deleted"].add(str(path))
                    continue
                f.write(data[half:])
        if how == "delete":
            time.sleep(float(rng.uniform(0, 2 * args.interval)))
            path.unlink()
            log["deleted"].add(str(path))
        else:
            log["kept"].add(str(path))
        time.sleep(float(rng.exponential(pause)))


def start_watcher(folder: Path, out: Path, args) -> subprocess.Popen:
    """The watcher as a separate process (so that it can be killed with SIGKILL)."""
    half = args.size / 2
    cmd = [
        sys.executable,
        "-m",
        "scattertag",
        "predict",
        "--watch",
        str(folder),
        "--out",
        str(out),
        "--beam-center",
        str(half),
        str(half),
        "--interval",
        str(args.interval),
        "--workers",
        str(args.workers),
    ]
    if args.model:
        cmd += ["--model", args.model]
    return subprocess.Popen(cmd, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def check(out: Path, log: dict) -> dict:
    """Counts from the CSV: parseable, once per kept file, errors, duplicates, missing."""
    with open(out, newline="") as f:
        table = list(csv.reader(f))
    header, rows = table[0], table[1:]
    bad_lines = sum(len(row) != len(header) for row in rows)
    path_col, error_col = header.index("path"), header.index("error")
    seen: dict[str, int] = {}
    errors = []
    for row in rows:
        if len(row) == len(header):
            seen[row[path_col]] = seen.get(row[path_col], 0) + 1
            if row[error_col]:
                errors.append(row[error_col])
    kept = {str(Path(p).resolve()) for p in log["kept"]}
    return {
        "rows": len(rows),
        "malformed rows": bad_lines,
        "kept files": len(kept),
        "kept files tagged once": sum(seen.get(p, 0) == 1 for p in kept),
        "kept files missing": sum(p not in seen for p in kept),
        "files with 2+ rows": sum(n > 1 for n in seen.values()),
        "error rows": len(errors),
        "first errors": errors[:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--size", type=int, default=256, help="frame side in pixels")
    parser.add_argument("--stall", type=float, default=3.0, help="longest stall mid-write, s")
    parser.add_argument("--interval", type=float, default=0.5, help="watcher scan interval, s")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    parser.add_argument("--dir", default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--drain", type=float, default=600.0, help="longest wait at the end, s")
    args = parser.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="soak_watch_"))
    folder, out = root / "detector", root / "live.csv"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"f{i:05d}.{'npy' if i % 2 else 'tif'}" for i in range(args.files)]
    log: dict = {"kept": set(), "deleted": set()}
    seconds = 60 * args.minutes
    start = time.time()
    watcher = start_watcher(folder, out, args)
    threads = [
        threading.Thread(
            target=writer, args=(folder, names[k :: args.writers], seconds, args, k, log)
        )
        for k in range(args.writers)
    ]
    for t in threads:
        t.start()
    time.sleep(seconds / 2)
    watcher.send_signal(signal.SIGKILL)  # a crash half-way
    watcher.wait()
    killed_at = time.time() - start
    watcher = start_watcher(folder, out, args)
    for t in threads:
        t.join()
    written = time.time() - start
    deadline = time.time() + args.drain
    while time.time() < deadline:  # let the watcher catch up with the last files
        time.sleep(5)
        if out.exists() and check(out, log)["kept files missing"] == 0:
            break
    watcher.send_signal(signal.SIGTERM)
    watcher.wait(60)
    result = check(out, log)
    print(
        f"{args.files} files by {args.writers} writers in {written:.0f} s "
        f"(watcher killed with SIGKILL at {killed_at:.0f} s and restarted); "
        f"done after {time.time() - start:.0f} s; watcher exit {watcher.returncode}"
    )
    print(f"deleted by writers: {len(log['deleted'])}")
    for key, value in result.items():
        print(f"  {key}: {value}")
    ok = (
        result["malformed rows"] == 0
        and result["kept files missing"] == 0
        and result["files with 2+ rows"] == 0
        and result["error rows"] == 0
    )
    print("PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
