"""Train the beam-centre candidate ranker (:mod:`scattertag.beam.ranker`) on simulated
frames: every estimator's candidates on each frame, labelled hit (within 2 px of the true
centre on the frame, 2 % of the diagonal off it) or miss, and a logistic model fitted to them.

The frames are those of ``bench_beam_center.py`` (same recipe: sizes 256 / 1000 / 2000,
every placement, detector, beamstop and image kind) for seeds other than the benchmark's
seed 0, so the benchmark stays held out; real frames are never used.

    python benchmarks/train_beam_center_ranker.py --seeds 1 2 --count 150 450 \\
        --cache /tmp/bc-frames --candidates /tmp/bc-cands.json \\
        --out src/scattertag/pretrained/beam_center_ranker.json
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from scattertag.beam import center as bc  # noqa: E402
from scattertag.beam import ranker  # noqa: E402
from scattertag.beam.candidates import candidates  # noqa: E402
from scattertag.io.files import write_text  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_beam_center import on_frame, simulated_frame  # noqa: E402


def frame_candidates(seed: int, i: int, cache: Path | None) -> dict:
    """Frame ``i`` of ``seed``: its shape, true centre, goal tolerance and candidates."""
    f = simulated_frame(seed, i, cache)
    counts = f["counts"]
    ok = bc.valid_pixels(counts, f["mask"])
    cands = candidates(counts, ok) if np.count_nonzero(ok) >= 256 else []
    x, y = float(f["x"]), float(f["y"])
    tol = 2.0 if on_frame(x, y, counts.shape) else 0.02 * math.hypot(*counts.shape)
    return {
        "seed": seed,
        "frame": i,
        "shape": list(counts.shape),
        "x": x,
        "y": y,
        "tol": tol,
        "cands": [dataclasses.asdict(c) for c in cands],
    }


def table(frames: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, F) and hit labels (N,) of every rankable candidate of ``frames``."""
    xs, ys = [], []
    for fr in frames:
        cands = [SimpleNamespace(**c) for c in fr["cands"]]
        if not cands:
            continue
        feats = ranker.features(cands, tuple(fr["shape"]))
        for c, f in zip(cands, feats):
            if c.method in ranker.RANKED:
                xs.append(f)
                ys.append(float(math.hypot(c.x - fr["x"], c.y - fr["y"]) <= fr["tol"]))
    return np.array(xs), np.array(ys)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--count", type=int, nargs="+", default=[150, 450], help="frames per seed")
    ap.add_argument("--cache", type=Path, default=None, help="simulated frames kept here")
    ap.add_argument("--candidates", type=Path, default=None, help="candidates kept here (JSON)")
    ap.add_argument("--l2", type=float, default=1.0, help="L2 penalty (standardised features)")
    ap.add_argument("--out", type=Path, required=True, help="weights (JSON)")
    args = ap.parse_args()
    if 0 in args.seeds:
        ap.error("seed 0 is the benchmark's: train on other seeds")
    if args.candidates is not None and args.candidates.exists():
        frames = json.loads(args.candidates.read_text())
    else:
        frames = [
            frame_candidates(seed, i, args.cache)
            for seed, count in zip(args.seeds, args.count)
            for i in tqdm(range(count), desc=f"candidates, seed {seed}", unit="frame")
        ]
        if args.candidates is not None:
            write_text(args.candidates, json.dumps(frames))
    x, y = table(frames)
    weights = ranker.fit(x, y, l2=args.l2)
    write_text(args.out, json.dumps(weights, indent=1) + "\n")
    print(f"{len(frames)} frames, {len(y)} candidates ({int(y.sum())} hits) -> {args.out}")


if __name__ == "__main__":
    main()
