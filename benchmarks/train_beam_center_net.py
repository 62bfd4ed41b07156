"""Train a learned beam-centre estimate (``beam_center_net.py`` beside this script) on
simulated frames that know their centre, and measure it on the benchmark's frames.

1. ``levels``: frames of the benchmark's recipe (``bench_beam_center.py``: catalogue
   detectors, SAXS / WAXS, grazing incidence, placements corner / central / edge / off with
   equal weights, every image kind) at sizes cycling through SIZES, simulation seeds
   ``--seeds`` (>= 10: the benchmark uses 0 and 1, the ranker 2 and 3); of each frame only
   its coarse level (the estimator's own :func:`scattertag.beam.pyramid.pyramid`, at most
   128 blocks a side) and the true centre are kept, one small .npz a frame under ``--data``.
2. ``train``: the net fitted to those levels (AdamW, ``--epochs``, the 8 flips and
   transposes of each level as augmentation, the last ``--val`` frames held out), weights
   written as safetensors.
3. ``evaluate``: on the benchmark's frames (``bench_beam_center.py --cache``), the shipped
   estimate, the net alone, the net refined the way the estimator refines its isotropy
   search (pattern search for the most isotropic centre from it, coarse then fine, then the
   local point-symmetry polish), the frames either gets right, and the net refined taken
   where the shipped estimate is not found (confidence under 0.3).

All are bit for bit reproducible from the seeds (one thread):

    OMP_NUM_THREADS=1 python benchmarks/train_beam_center_net.py levels --seeds 10 11 \\
        --count 1500 --data /work/data/beamnet/levels
    OMP_NUM_THREADS=1 python benchmarks/train_beam_center_net.py train \\
        --data /work/data/beamnet/levels --out /work/data/beamnet/net.safetensors
    python benchmarks/train_beam_center_net.py evaluate \\
        --weights /work/data/beamnet/net.safetensors --seed 0 --count 500 \\
        --cache /work/data/beamnet/bench
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import io  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from scattertag.beam import center as bc  # noqa: E402
from scattertag.beam.candidates import Candidate  # noqa: E402
from scattertag.beam.polish import _polish_symmetry  # noqa: E402
from scattertag.beam.pyramid import pixels, pyramid  # noqa: E402
from scattertag.beam.radial import climb  # noqa: E402
from scattertag.io.files import write_bytes  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import beam_center_net as net  # noqa: E402
from beam_center_net import BeamCenterCNN  # noqa: E402
from bench_beam_center import EQUAL_PLACEMENTS, on_frame, simulated_frame  # noqa: E402

#: Frame sizes of the training frames, in turn (the benchmark's are 256 / 1000 / 2000;
#: smaller ones are cheaper to simulate and give coarse levels like theirs, if less noisy).
SIZES = (256, 1000, 512, 256, 768, 512)


def level_record(seed: int, i: int, size: int) -> dict:
    """Frame ``i`` of ``seed`` at ``size``: its coarse level and its true centre (frame px)."""
    from scattertag.simulate import Recipe, draw_experiment, simulate_image

    exp = draw_experiment(Recipe(size=size, placements=EQUAL_PLACEMENTS), seed, i)
    s = simulate_image(exp, 0)
    ok = bc.valid_pixels(s.counts, s.mask)
    coarse = pyramid(s.counts, ok)[0]
    return {
        "g": coarse.g.astype(np.float32),
        "ok": coarse.ok,
        "lit": coarse.lit,
        "b": coarse.b,
        "shape": np.array(s.counts.shape),
        "x": float(s.geometry.beam_center[0]),
        "y": float(s.geometry.beam_center[1]),
        "kind": str(s.params.get("kind", "sample")),
    }


def make_levels(seeds: list[int], count: int, data: Path) -> None:
    """One .npz per frame under ``data`` (kept: reruns skip frames already there)."""
    data.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        if seed < 10:
            raise SystemExit(f"seed {seed}: seeds under 10 are the benchmark's and the ranker's")
        for i in tqdm(range(count), desc=f"levels, seed {seed}", unit="frame"):
            path = data / f"seed{seed}_{i:05d}.npz"
            if path.exists():
                continue
            buf = io.BytesIO()
            np.savez_compressed(buf, **level_record(seed, i, SIZES[i % len(SIZES)]))
            write_bytes(path, buf.getvalue())


def load_levels(data: Path, seeds: list[int], count: int) -> list[dict]:
    """The first ``count`` frames of each seed under ``data`` (all there, else an error)."""
    out = []
    for seed in seeds:
        for i in range(count):
            path = data / f"seed{seed}_{i:05d}.npz"
            if not path.exists():
                raise SystemExit(f"{path}: missing; run the levels step first")
            with np.load(path) as z:
                out.append({k: z[k] if z[k].ndim else z[k].item() for k in z.files})
    return out


def prepared(frames: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Canvases (N, 2, CANVAS, CANVAS) float16 and true centres (N, 2) in canvas (u, v)."""
    images = np.zeros((len(frames), 2, net.CANVAS, net.CANVAS), np.float16)
    targets = np.zeros((len(frames), 2), np.float32)
    for n, f in enumerate(frames):
        inp = net.net_input(f["g"].astype(np.float64), f["ok"], int(f["b"]))
        images[n] = inp.image
        targets[n] = inp.from_frame(float(f["x"]), float(f["y"]))
    return images, targets


def augment(
    x: torch.Tensor, t: torch.Tensor, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each canvas flipped and transposed at random (one of 8), its centre (u, v) with it."""
    x, t = x.clone(), t.clone()
    side = float(net.CANVAS)
    for n in range(x.shape[0]):
        fx, fy, tr = rng.random(3) < 0.5
        if fx:
            x[n] = x[n].flip(-1)
            t[n, 0] = side - t[n, 0]
        if fy:
            x[n] = x[n].flip(-2)
            t[n, 1] = side - t[n, 1]
        if tr:
            x[n] = x[n].transpose(-1, -2).clone()
            t[n] = t[n].flip(0)
    return x, t


def loss_terms(out: torch.Tensor, t: torch.Tensor, width: float = 1.0) -> torch.Tensor:
    """Cross-entropy of the heatmap against a Gaussian of ``width`` cells about the centre
    (clamped to the canvas), plus the L1 error of the offsets (cells) of the cells within
    1.5 cells of it (centres on the canvas only)."""
    cells = out.shape[-1]
    c = (t / net.CELL).clamp(0, cells - 1e-3)  # (N, 2) in cells, u then v
    mid = torch.arange(cells, dtype=torch.float32) + 0.5
    du = mid[None, None, :] - c[:, 0, None, None]  # (N, 1, W)
    dv = mid[None, :, None] - c[:, 1, None, None]  # (N, H, 1)
    d2 = du**2 + dv**2  # (N, H, W)
    q = torch.softmax(-d2.flatten(1) / (2 * width**2), dim=1)
    ce = -(q * torch.log_softmax(out[:, 0].flatten(1), dim=1)).sum(1).mean()
    inside = ((t >= 0) & (t < cells * net.CELL)).all(1).float()[:, None, None]
    near = (d2 <= 1.5**2).float() * inside
    l1 = (out[:, 1] + du).abs() + (out[:, 2] + dv).abs()  # offset target: centre - middle
    return ce + 2.0 * (l1 * near).sum() / near.sum().clamp(min=1)


def held_out(model: torch.nn.Module, images: np.ndarray, frames: list[dict]) -> dict:
    """Share of frames within 2 px (centre on the frame) / 2 % of the diagonal (off it)."""
    model.eval()
    hits: dict[str, list[bool]] = {"on": [], "off": []}
    errs = []
    with torch.inference_mode():
        for a in range(0, len(frames), 64):
            out = model(torch.from_numpy(images[a : a + 64].astype(np.float32))).numpy()
            for k, f in enumerate(frames[a : a + 64]):
                inp = net.net_input(f["g"].astype(np.float64), f["ok"], int(f["b"]))
                e = net.decode(out[k], inp)
                rows, cols = (int(v) for v in f["shape"])
                err = float(np.hypot(e.x - f["x"], e.y - f["y"]))
                on = -0.5 <= f["x"] < cols - 0.5 and -0.5 <= f["y"] < rows - 0.5
                diag = float(np.hypot(rows, cols))
                hits["on" if on else "off"].append(err <= (2.0 if on else 0.02 * diag))
                errs.append(100 * err / diag)
    model.train()
    return {
        "on_2px": float(np.mean(hits["on"])),
        "off_2pct": float(np.mean(hits["off"])),
        "median_pct_diag": float(np.median(errs)),
        "within_1pct": float(np.mean(np.array(errs) <= 1.0)),
    }


def train(
    frames: list[dict], val: int, epochs: int, seed: int, out: Path, init: Path | None, lr: float
) -> None:
    """AdamW (one cycle up to ``lr``) on the training frames, the last ``val`` held out,
    from the weights ``init`` if given; float16 safetensors."""
    from safetensors.torch import load_file, save

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images, targets = prepared(frames)
    tr_x, tr_t = torch.from_numpy(images[:-val]), torch.from_numpy(targets[:-val])
    model = BeamCenterCNN()
    if init is not None:
        model.load_state_dict({k: v.float() for k, v in load_file(init).items()})
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    batch = 32
    steps = epochs * math.ceil(tr_x.shape[0] / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    for epoch in range(epochs):
        order = torch.from_numpy(rng.permutation(tr_x.shape[0]))
        total = 0.0
        for a in tqdm(range(0, len(order), batch), desc=f"epoch {epoch + 1}", leave=False):
            pick = order[a : a + batch]
            x, t = augment(tr_x[pick].float(), tr_t[pick], rng)
            loss = loss_terms(model(x), t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(pick)
        score = held_out(model, images[-val:], frames[-val:])
        print(f"epoch {epoch + 1}: loss {total / tr_x.shape[0]:.3f}, held out {score}", flush=True)
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    write_bytes(out, save(state))
    print(f"{len(frames) - val} frames trained, {val} held out -> {out}")


def refined(model: BeamCenterCNN, counts: np.ndarray, ok: np.ndarray) -> tuple:
    """The net's centre (x, y, spread) and that centre refined like the isotropy search's
    (:func:`scattertag.beam.radial.climb` coarse then fine, then
    :func:`scattertag.beam.polish._polish_symmetry`), frame pixels."""
    coarse, fine, ring = pyramid(counts, ok)
    e = net.estimate(model, coarse.g, coarse.ok, coarse.b)
    x, y, _ = climb(pixels(coarse), coarse.from_frame(e.x, e.y), 4.0, 0.5)
    start = fine.from_frame(*coarse.to_frame(x, y))
    x, y, iso = climb(pixels(fine), start, 1.0, 0.25)
    fx, fy = fine.to_frame(x, y)
    polished = _polish_symmetry(ring, Candidate("isotropy", fx, fy, 0.5, 0.0, 0.0, iso))
    return (e.x, e.y, e.spread), (polished.x, polished.y)


def evaluate(weights: Path, seed: int, count: int, cache: Path) -> None:
    """Hits (2 px on the frame, 2 % of the diagonal off it) of the shipped estimate, the
    net, the net refined, either, and the net refined where the estimate is not found."""
    import time

    from scattertag.beam.center import CONFIDENCE_THRESHOLD, estimate_beam_center

    model = net.load_model(weights)
    rows = []
    net_cpu = []
    for i in tqdm(range(count), desc="frames", unit="frame"):
        f = simulated_frame(seed, i, cache)
        counts, x, y = f["counts"], float(f["x"]), float(f["y"])
        ok = bc.valid_pixels(counts, f["mask"])
        if np.count_nonzero(ok) < 256:
            continue
        est = estimate_beam_center(counts, f["mask"])
        c0 = time.process_time()
        (nx, ny, _), (rx, ry) = refined(model, counts, ok)
        if counts.shape == (1000, 1000):
            net_cpu.append(time.process_time() - c0)
        on = on_frame(x, y, counts.shape)
        tol = 2.0 if on else 0.02 * math.hypot(*counts.shape)
        hit = {
            "shipped": math.hypot(est.x - x, est.y - y) <= tol,
            "net": math.hypot(nx - x, ny - y) <= tol,
            "net refined": math.hypot(rx - x, ry - y) <= tol,
        }
        hit["either"] = hit["shipped"] or hit["net refined"]
        weak = est.confidence < CONFIDENCE_THRESHOLD
        hit["refined if not found"] = hit["net refined"] if weak else hit["shipped"]
        err = math.hypot(nx - x, ny - y) / math.hypot(*counts.shape)
        rows.append({"on": on, "weak": weak, "err": err, **hit})
    print(f"\n== {len(rows)} frames of seed {seed} (weights {weights}) ==")
    for label, group in (
        ("on the frame", [r for r in rows if r["on"]]),
        ("  of them not found", [r for r in rows if r["on"] and r["weak"]]),
        ("off the frame", [r for r in rows if not r["on"]]),
        ("  of them not found", [r for r in rows if not r["on"] and r["weak"]]),
    ):
        if not group:
            continue
        keys = ("shipped", "net", "net refined", "either", "refined if not found")
        hits = "  ".join(f"{k} {sum(r[k] for r in group):3d}" for k in keys)
        med = 100 * float(np.median([r["err"] for r in group]))
        print(
            f"{label:20s} {len(group):3d} frames, hits: {hits}; net median error {med:.2f} % diag"
        )
    if net_cpu:
        ms = 1000 * float(np.median(net_cpu))
        print(f"net + refinement: median CPU {ms:.1f} ms a 1000 x 1000 frame")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="step", required=True)
    lv = sub.add_parser("levels", help="simulate frames, keep their coarse levels")
    lv.add_argument("--seeds", type=int, nargs="+", default=[10])
    lv.add_argument("--count", type=int, default=1500, help="frames per seed")
    lv.add_argument("--data", type=Path, required=True)
    tr = sub.add_parser("train", help="fit the net to the kept levels")
    tr.add_argument("--seeds", type=int, nargs="+", default=[10, 11])
    tr.add_argument("--count", type=int, default=1500, help="frames per seed")
    tr.add_argument("--data", type=Path, required=True)
    tr.add_argument("--val", type=int, default=200, help="frames held out (the last ones)")
    tr.add_argument("--epochs", type=int, default=16)
    tr.add_argument("--seed", type=int, default=0, help="torch / numpy seed of the training")
    tr.add_argument("--lr", type=float, default=3e-3, help="largest learning rate")
    tr.add_argument("--init", type=Path, default=None, help="start from these weights")
    tr.add_argument("--out", type=Path, required=True)
    ev = sub.add_parser("evaluate", help="the net on the benchmark's frames")
    ev.add_argument("--weights", type=Path, required=True)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--count", type=int, default=500)
    ev.add_argument("--cache", type=Path, default=None, help="bench_beam_center.py's frames")
    args = ap.parse_args()
    if args.step == "evaluate":
        torch.set_num_threads(1)
        evaluate(args.weights, args.seed, args.count, args.cache)
    elif args.step == "levels":
        make_levels(args.seeds, args.count, args.data)
    else:
        torch.set_num_threads(1)
        frames = load_levels(args.data, args.seeds, args.count)
        train(frames, args.val, args.epochs, args.seed, args.out, args.init, args.lr)


if __name__ == "__main__":
    main()
