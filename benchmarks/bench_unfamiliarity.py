"""Unfamiliarity score: real frames, simulated frames and probes ranked, and its cost.

1. **Real frames** (``--real``, default ``../shared/real-dev``): every frame listed in its
   ``centres.tsv``, tagged by ``scattertag.predict`` with the shipped model and the checked
   beam centre; its ``unfamiliarity`` column and the two parts of the score.
2. **Simulated frames** (``--simulated``, default 24): the default recipe's test-shard
   experiments (index 9 mod 10) at 256 px, what the tagger was trained on.
3. **Probes** (:func:`scattertag.features.unfamiliarity.probe_frames`): camera, astronaut in
   grey, uniform noise and a checkerboard, scaled to 0..S counts for S in ``--scales``, as
   they are (rounded to whole counts) and Poisson-sampled, beam centre at the frame centre.
4. **Cost**: median over the real frames of the time to make the views alone and with the
   score (one process, one thread), side by side, and their ratio.
5. **Cost at 1000 and 2000 pixels** (``--sizes``): a Poisson ring frame of each side with its
   beam centre off the middle, ``--repeats`` frames: median CPU ms per frame of the views
   alone, the views and the score as shipped (a sample of the cells,
   ``unfamiliarity.SAMPLE_PIXELS``) and the views and the score over every cell (the score
   before the sampling), side by side; and the score's set-up per geometry, sampled and over
   every cell. ``--before FILE`` times an earlier unfamiliarity.py beside them (e.g.
   ``git show f477064:src/scattertag/features/unfamiliarity.py > before.py``, the score
   before the sampling). ``--cost-only`` prints this section alone.

Prints one line per frame, sorted by score, then for each probe set the lowest probe score
beside the highest real-frame score.

    python benchmarks/bench_unfamiliarity.py
    python benchmarks/bench_unfamiliarity.py --scales 100 10000 --simulated 0
    python benchmarks/bench_unfamiliarity.py --cost-only --sizes 1000 2000
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import astuple  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REAL_DEV = Path(__file__).resolve().parents[2] / "shared" / "real-dev"


def parts(predictor, counts, valid, centre):
    """(Score, views seconds, views + score seconds) of one frame."""
    from scattertag.features.views import ViewMaker
    from scattertag.geometry import Geometry

    maker = ViewMaker(predictor.view_spec, Geometry(counts.shape, centre), None)
    maker.with_unfamiliarity(counts, valid)  # set-ups done before timing
    t0 = time.perf_counter()
    maker(counts, valid)
    t1 = time.perf_counter()
    maker.with_unfamiliarity(counts, valid)
    t2 = time.perf_counter()
    return maker.unfamiliarity(*maker._prepare(counts, valid)), t1 - t0, t2 - t1


def cpu_ms(calls: dict, repeats: int) -> dict[str, float]:
    """Median CPU milliseconds of each of ``calls`` (name -> callable), interleaved: each
    repeat calls every one once, so that they share the machine's load."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            t0 = time.process_time()
            call()
            times[name].append(time.process_time() - t0)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def ring_frame(side: int, seed: int) -> tuple[np.ndarray, tuple[float, float]]:
    """(side, side) Poisson counts of a decay and three rings about a centre off the middle."""
    centre = (0.43 * side, 0.56 * side)
    rows, cols = np.indices((side, side), dtype=np.float32)
    r = np.hypot(cols - centre[0], rows - centre[1]) / side
    mean = 20 + 3000 / (1 + (r / 0.02) ** 2)
    for r0 in (0.15, 0.27, 0.38):
        mean += 400 * np.exp(-0.5 * ((r - r0) / 0.004) ** 2)
    return np.random.default_rng(seed).poisson(mean).astype(np.int32), centre


def load_before(path: Path | None):
    """The module of an earlier unfamiliarity.py (same interface), or None."""
    if path is None:
        return None
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("unfamiliarity_before", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def cost_of(view_spec, side: int, repeats: int, seed: int, before=None) -> dict[str, float]:
    """CPU ms per frame of a ``side`` ring frame: views, views + score sampled (as shipped)
    and over every cell, and the score's set-up per geometry in both cases; the same for
    the ``before`` module's score if given."""
    from scattertag.features import unfamiliarity
    from scattertag.features.views import ViewMaker
    from scattertag.geometry import Geometry

    counts, centre = ring_frame(side, seed)
    maker = ViewMaker(view_spec, Geometry(counts.shape, centre), None)
    shipped = unfamiliarity.SAMPLE_PIXELS

    def set_up(pixels: int):
        unfamiliarity.SAMPLE_PIXELS = pixels
        try:
            return unfamiliarity.Unfamiliarity(counts.shape, centre)
        finally:
            unfamiliarity.SAMPLE_PIXELS = shipped

    scores = {"score": set_up(shipped), "every cell": set_up(counts.size)}
    total, valid = maker._prepare(counts, None)
    calls, setups = {}, {}
    if before is not None:
        scores["before"] = before.Unfamiliarity(counts.shape, centre)
        calls["views + score before"] = lambda: scored("before")
        calls["score alone before"] = lambda: scores["before"](total, valid)
        setups["set-up before"] = lambda: before.Unfamiliarity(counts.shape, centre)

    def scored(name: str):
        maker._unfamiliarity = scores[name]
        return maker.with_unfamiliarity(counts)

    out = cpu_ms(
        {
            "views": lambda: maker(counts),
            "views + score": lambda: scored("score"),
            "views + score, every cell": lambda: scored("every cell"),
            "score alone": lambda: scores["score"](total, valid),
            "score alone, every cell": lambda: scores["every cell"](total, valid),
            **calls,
        },
        repeats,
    )
    setup = {
        "set-up": lambda: set_up(shipped),
        "set-up, every cell": lambda: set_up(counts.size),
        **setups,
    }
    return {**out, **cpu_ms(setup, 3)}


def cost(view_spec, sizes: list[int], repeats: int, seed: int, before=None) -> None:
    """Print :func:`cost_of` for each frame side, side by side."""
    ms = {side: cost_of(view_spec, side, repeats, seed, before) for side in sizes}
    print(f"CPU ms per frame (median of {repeats} interleaved; set-ups of 3), one thread")
    print(f"{'':28s}" + "".join(f"{f'{side} x {side}':>13s}" for side in sizes))
    for name in ms[sizes[0]]:
        print(f"{name:28s}" + "".join(f"{ms[side][name]:13.1f}" for side in sizes))


def real_frames(folder: Path, view_spec):
    """(name, counts, valid, centre) of every frame listed in ``folder``/centres.tsv."""
    from scattertag.geometry import GeometryOptions
    from scattertag.prediction.prepare import Preparer, item_frames
    from scattertag.prediction.sources import items_from_paths

    with open(folder / "centres.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    preparer = Preparer(view_spec)  # for the pixels tagging uses
    for row in rows:
        centre = (float(row["beam_x"]), float(row["beam_y"]))
        options = GeometryOptions.from_user(beam_center=centre)
        item = items_from_paths([str(folder / row["local_path"])], options)[0]
        for frame in item_frames(item):
            yield row["local_path"], np.asarray(frame.counts), preparer.valid(item, frame), centre


def main() -> None:
    """Parse the arguments, score every frame, print the ranking and the summary."""
    import scattertag
    from scattertag.features.unfamiliarity import probe_frames
    from scattertag.prediction.pipeline import Predictor
    from scattertag.simulate import Recipe, draw_experiment, simulate_image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REAL_DEV)
    parser.add_argument("--simulated", type=int, default=24)
    parser.add_argument("--scales", type=float, nargs="+", default=[1e2, 1e3, 1e4, 1e5])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 2000])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--cost-only", action="store_true")
    parser.add_argument("--before", type=Path, help="an earlier unfamiliarity.py to time beside")
    args = parser.parse_args()
    predictor = Predictor()
    before = load_before(args.before)
    if args.cost_only:
        cost(predictor.view_spec, args.sizes, args.repeats, args.seed, before)
        return
    lines: list[tuple[str, str, float, float, float]] = []  # (group, name, u, s, d)
    views_s, scored_s = [], []

    if (args.real / "centres.tsv").is_file():
        for name, counts, valid, centre in real_frames(args.real, predictor.view_spec):
            table = scattertag.predict(
                str(args.real / name), beam_center=centre, model=predictor, workers=0
            )
            score, t_views, t_scored = parts(predictor, counts, valid, centre)
            views_s.append(t_views)
            scored_s.append(t_scored)
            row = table[0]
            lines.append(("real-dev", name[:48], row["unfamiliarity"], *astuple(score)))
    else:
        print(f"{args.real}: no centres.tsv, real frames skipped")

    recipe = Recipe(size=256)
    for e in range(9, 10 * args.simulated, 10):
        experiment = draw_experiment(recipe, args.seed, e)
        sim = simulate_image(experiment, 0)
        score = parts(predictor, sim.counts, sim.mask, experiment.geometry.beam_center)[0]
        what = f"experiment {e}: {experiment.params['detector']['name']}"
        lines.append(("simulated", what, score.value, *astuple(score)))

    rng = np.random.default_rng(args.seed)
    for scale in args.scales:
        for poisson in (False, True):
            group = f"probes 0..{scale:g}" + (" Poisson" if poisson else "")
            for name, grey in probe_frames(scale, args.seed).items():
                counts = rng.poisson(grey) if poisson else np.rint(grey)
                rows, cols = counts.shape
                centre = ((cols - 1) / 2, (rows - 1) / 2)
                table = scattertag.predict(counts, beam_center=centre, model=predictor)
                score = parts(predictor, counts, np.ones(counts.shape, bool), centre)[0]
                lines.append((group, name, table[0]["unfamiliarity"], *astuple(score)))

    print(f"{'group':24s} {'frame':50s} {'score':>7s} {'struct':>7s} {'disp':>7s}")
    for group, name, u, s, d in sorted(lines, key=lambda x: x[2]):
        print(f"{group:24s} {name:50s} {u:7.3f} {s:7.3f} {d:7.3f}")
    real = [u for g, _, u, _, _ in lines if g == "real-dev"]
    simulated = [u for g, _, u, _, _ in lines if g == "simulated"]
    top = max(real) if real else float("nan")
    print()
    if real:
        print(f"real-dev ({len(real)} frames): max {top:.3f}, median {statistics.median(real):.3f}")
    if simulated:
        print(f"simulated ({len(simulated)} frames): max {max(simulated):.3f}")
    for group in dict.fromkeys(g for g, *_ in lines if g.startswith("probes")):
        scores = {n: u for g, n, u, _, _ in lines if g == group}
        above = sum(u > top for u in scores.values())
        low = min(scores, key=scores.__getitem__)
        print(
            f"{group:24s} lowest probe {scores[low]:.3f} ({low}) vs real-dev max {top:.3f}: "
            f"{above} of {len(scores)} above"
        )
    if views_s:
        v, w = statistics.median(views_s), statistics.median(scored_s)
        print(
            f"per real frame (median): views {1e3 * v:.1f} ms, views + score {1e3 * w:.1f} ms, "
            f"ratio {w / v:.2f}"
        )
    if args.sizes and args.repeats:
        print()
        cost(predictor.view_spec, args.sizes, args.repeats, args.seed, before)


if __name__ == "__main__":
    main()
