"""The Cramer-Rao ceiling of the simulated beam-centre goal: how many frames ANY estimator
could place within the goal's tolerance.

For each benchmark frame (the frames of ``bench_beam_center.py``: the same seeds, sizes and
recipe, read from ``--cache`` for their categories) the simulator renders the frame's
expected counts with the beam centre moved (``scattertag.simulate.fisher.centre_bound``:
every term, parameter and draw of the frame known; a paddle's or wedge's place along the
stop a nuisance), and the Fisher information of the centre gives the hit probability of an
efficient unbiased estimator, P(|e| <= tol) for e ~ N(0, C), C the bound; tol = 2 px with
the centre on the frame, 2 % of the diagonal off it. The ceiling of a set of frames is the
sum of P over its frames (and the count of frames with P >= 0.5). ``--free-model`` also
leaves the distance, every source's amplitude and a flat offset unknown (a second, less
optimistic bound, in the columns ``p_free``). With ``--against CSV`` (a ``--per-frame`` CSV of
``bench_beam_center.py``) main's hits stand beside the ceiling per category, and the
frames main misses although the bound makes them reachable (P >= ``--reachable``) and
those it hits although the bound says P < 0.5 are listed. ``--totals-only`` prints no
frame (the fair test's seed 2).

    python benchmarks/bench_beam_ceiling.py --seed 0 --count 500 --cache /work/data/tilt/frames \\
        --per-frame ceiling0.csv --against /work/data/s14/s16fin/seed0.csv > ceiling0.log
    python benchmarks/bench_beam_ceiling.py --seed 0 --frames 0-29 --step 0.25  # the step's effect
    python benchmarks/bench_beam_ceiling.py --seed 0 --count 500 --per-frame ceiling0.csv \\
        --resume --free-model --against seed0.csv --plot docs/beam_ceiling.png  # read back, drawn
    python benchmarks/bench_beam_ceiling.py --pool 0,1,3,4,5 --free-model \\
        --per-frame 'ceiling{seed}.csv' --against 'seed{seed}.csv'  # seeds pooled, read back

Rendering costs about 1-2 s a 2000 px frame idle (5-7 renders a frame: the centre, +-0.5 px
along two axes and the stop's free parameter); ``--per-frame`` rows are written as they
come and ``--resume`` skips the frames already there.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from bench_beam_center import (  # noqa: E402
    CATEGORIES,
    EQUAL_PLACEMENTS,
    SIZES,
    exposure_band,
    on_frame,
    simulated_frame,
    tilt_band,
)
from scattertag.simulate import Recipe, draw_experiment  # noqa: E402
from scattertag.simulate.fisher import (  # noqa: E402
    STEP,
    centre_bound,
    informative,
    pixel_variance,
    sigma_max,
)
from scattertag.simulate.image import expected_counts  # noqa: E402

#: Per-frame CSV columns besides the categories.
FIELDS = (
    "frame",
    *CATEGORIES,
    "on",
    "tolerance",
    "sigma_max",
    "p_hit",
    "sigma_free",
    "p_free",
    "pixels",
    "chi2",
    "seconds",
)


def frame_list(spec: str | None, count: int) -> list[int]:
    """Frame numbers of ``--frames`` ("0-29,40,41") or the first ``count``."""
    if not spec:
        return list(range(count))
    frames: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        frames += range(int(lo), int(hi or lo) + 1)
    return frames


def ceiling_row(seed: int, i: int, cache: Path | None, step: float, free: bool) -> dict:
    """One frame's categories (as bench_beam_center.py's), its bound and hit probability,
    and chi2: the mean of (counts - mu)^2 / Var over the bound's pixels (about 1 when the
    expected counts are the frame's)."""
    t0 = time.process_time()
    f = simulated_frame(seed, i, cache)
    exp = draw_experiment(Recipe(size=SIZES[i % len(SIZES)], placements=EQUAL_PLACEMENTS), seed, i)
    counts = f["counts"]
    x, y = float(f["x"]), float(f["y"])
    on = on_frame(x, y, counts.shape)
    tol = 2.0 if on else 0.02 * math.hypot(*counts.shape)
    mu = expected_counts(exp, 0)
    use = informative(exp, mu) & (counts < exp.count_limit)
    resid = (counts[use] - mu[use]) ** 2 / pixel_variance(exp, mu[use])
    bound = centre_bound(exp, 0, step, free_model=free)
    row = {
        "frame": i,
        "size": int(f["size"]),
        "placement": f["placement"],
        "setup": str(f.get("setup", "?")),
        "tilt": tilt_band(seed, i),
        "detector": str(f["detector"]).split()[0],
        "beamstop": str(f.get("beamstop", "?")),
        "sample": str(f.get("sample", "?")),
        "kind": f["kind"],
        "exposure": exposure_band(counts, f["mask"]),
        "on": on,
        "tolerance": round(tol, 2),
        "sigma_max": f"{bound.sigma_max:.4g}",
        "p_hit": round(bound.hit_probability(tol), 4),
        "sigma_free": "",
        "p_free": "",
        "pixels": bound.pixels,
        "chi2": round(float(resid.mean()) if resid.size else math.nan, 3),
    }
    if free:
        row.update(
            sigma_free=f"{sigma_max(bound.free_covariance):.4g}",
            p_free=round(bound.hit_probability(tol, free=True), 4),
        )
    row["seconds"] = round(time.process_time() - t0, 2)
    return row


def frame_key(r: dict) -> tuple[int, int]:
    """A frame's (seed, frame number): frames of several seeds pooled stay apart."""
    return int(r["seed"]), int(r["frame"])


def frame_name(r: dict, pooled: bool) -> str:
    """'17', or 'seed/17' where seeds are pooled."""
    return f"{r['seed']}/{r['frame']}" if pooled else str(r["frame"])


def read_rows(path: Path, seed: int) -> list[dict]:
    """A per-frame CSV's rows of ``seed``'s frames with ``on`` and ``hit`` as bools, the hit
    probabilities as floats."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["seed"] = seed
        for key in ("on", "hit"):
            if key in r:
                r[key] = r[key] == "True"
        for key in ("p_hit", "p_free"):
            if key in r:
                r[key] = float(r[key]) if r[key] not in ("", None) else None
    return rows


def hit_share(rows: list[dict], main: dict[tuple[int, int], dict]) -> float:
    """The share of ``rows``' frames that main hits, over the frames ``main`` holds."""
    hits = [main[frame_key(r)]["hit"] for r in rows if frame_key(r) in main]
    return sum(hits) / max(len(hits), 1)


def summary(rows: list[dict], main: dict[tuple[int, int], dict], free: bool) -> str:
    """'ceiling sum P (%) of n, P >= 0.5: k[, amplitudes free ...][, main hits]'."""
    if not rows:
        return "   -"
    n = len(rows)
    total = sum(r["p_hit"] for r in rows)
    text = f"{total:6.1f} ({100 * total / n:5.1f} %)"
    text += f" of {n:3d}, P>=0.5 {sum(r['p_hit'] >= 0.5 for r in rows):3d}"
    if free and all(r["p_free"] is not None for r in rows):
        loose = sum(r["p_free"] for r in rows)
        text += f"; model free {loose:6.1f} ({100 * loose / n:5.1f} %)"
    if main:
        hits = sum(main[frame_key(r)]["hit"] for r in rows if frame_key(r) in main)
        text += f"; main {hits:3d} ({100 * hit_share(rows, main):5.1f} %)"
    return text


def report(
    rows: list[dict],
    main: dict[tuple[int, int], dict],
    free: bool,
    reachable: float,
    totals: bool,
    lists: str = "p_hit",
    pooled: bool = False,
):
    """The ceiling on and off the frame, by category, and (``main``) the frames to explain,
    by the hit probability of column ``lists`` (``p_hit``: the model known; ``p_free``);
    ``pooled``: frames of several seeds, named seed/frame."""
    for where, pick in (("on the frame (2 px)", True), ("off the frame (2 %)", False)):
        print(f"  {where:22s} {summary([r for r in rows if r['on'] == pick], main, free)}")
    if totals:
        return
    for key in CATEGORIES:
        print(f"  by {key}:")
        for value in sorted({str(r[key]) for r in rows}):
            group = [r for r in rows if str(r[key]) == value]
            for where, pick in (("on ", True), ("off", False)):
                part = [r for r in group if r["on"] == pick]
                if part:
                    print(f"    {value[:22]:22s} {where} {summary(part, main, free)}")
    if not main:
        return
    both = [r for r in rows if frame_key(r) in main]
    missed = [r for r in both if r[lists] >= reachable and not main[frame_key(r)]["hit"]]
    print(f"\n  main misses although {lists} >= {reachable} ({len(missed)}), by sample / stop:")
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in missed:
        groups[(str(r["sample"]), str(r["beamstop"]))].append(r)
    for (sample, stop), group in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        frames = ", ".join(
            f"{frame_name(r, pooled)}{'' if r['on'] else ' off'}"
            f" ({float(m['error_px']):.0f} px, {m['method']})"
            for r in group
            for m in [main[frame_key(r)]]
        )
        print(f"    {sample} / {stop}: {len(group)}: {frames}")
    lucky = [r for r in both if r[lists] < 0.5 and main[frame_key(r)]["hit"]]
    print(f"\n  main hits although {lists} < 0.5 ({len(lucky)} frames):")
    for r in sorted(lucky, key=lambda r: r[lists]):
        m = main[frame_key(r)]
        print(
            f"    {frame_name(r, pooled):>6} {'on ' if r['on'] else 'off'} {r['placement']:7s}"
            f" {r['kind']:11s}"
            f" {r['sample']:16s} {r['beamstop']:9s} {r['size']:>5} P {r['p_hit']:.3f}"
            f" (free {r['p_free']}) sigma {r['sigma_max']:>9s} px (free {r['sigma_free']});"
            f" main {float(m['error_px']):.2f} px {m['method']}"
        )


def plot(
    rows: list[dict],
    main: dict[tuple[int, int], dict],
    free: bool,
    path: Path,
    title: str,
    label: str,
) -> None:
    """Bars by sample, on and off the frame: main's hits, the model-free ceiling and the
    known-model ceiling (sum of P), each as a percentage of the group's frames."""
    from scattertag.plotting import new_figure, save

    fig = new_figure(figsize=(11, 6))
    panels = fig.subplots(1, 2, sharex=True)
    for ax, (where, pick) in zip(
        panels,
        (("on the frame: within 2 px", True), ("off the frame: within 2 % of the diagonal", False)),
    ):
        part = [r for r in rows if r["on"] == pick]
        samples = sorted({str(r["sample"]) for r in part})
        groups = [("all", part)] + [
            (s, [r for r in part if str(r["sample"]) == s]) for s in samples
        ]
        series = [("known model", "p_hit", "#bbbbbb")]
        if free:
            series.append(("model free", "p_free", "#6a9fd4"))
        ypos = np.arange(len(groups))
        bars = len(series) + bool(main)
        height = 0.8 / bars
        for k, (bound, key, colour) in enumerate(series):
            values = [100 * sum(r[key] for r in g) / len(g) for _, g in groups]
            ax.barh(ypos + k * height, values, height, color=colour, label=f"ceiling, {bound}")
        if main:
            values = [100 * hit_share(g, main) for _, g in groups]
            ax.barh(ypos + len(series) * height, values, height, color="#d95f02", label=label)
        ax.set_yticks(ypos + (bars - 1) * height / 2, [f"{n} ({len(g)})" for n, g in groups])
        ax.invert_yaxis()
        ax.axvline(95 if pick else 90, color="k", lw=0.8, ls="--", label="goal")
        ax.set_title(where, fontsize=9)
        ax.set_xlabel("% of frames")
        ax.set_xlim(0, 100)
    fig.subplots_adjust(wspace=0.45, bottom=0.16)
    handles, labels = panels[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.suptitle(title, fontsize=10)
    print(f"  plot: {save(fig, path)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=500, help="frames (default 500)")
    ap.add_argument("--frames", default=None, help="frame numbers instead, e.g. 0-29,40")
    ap.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    ap.add_argument("--cache", type=Path, default=None, help="bench_beam_center.py's frames")
    ap.add_argument("--step", type=float, default=STEP, help="central-difference step, px")
    ap.add_argument(
        "--free-model", action="store_true", help="also the bound with amplitudes, distance free"
    )
    ap.add_argument("--per-frame", type=Path, default=None, help="one CSV row per frame")
    ap.add_argument("--resume", action="store_true", help="skip the frames in --per-frame")
    ap.add_argument("--against", type=Path, default=None, help="bench_beam_center.py's CSV")
    ap.add_argument("--reachable", type=float, default=0.9, help="P of a reachable miss")
    ap.add_argument("--totals-only", action="store_true", help="only the totals (seed 2)")
    ap.add_argument(
        "--lists-by",
        choices=("p_hit", "p_free"),
        default="p_hit",
        help="the bound the lists of frames use (p_free: the model-free one, --free-model)",
    )
    ap.add_argument("--plot", type=Path, default=None, help="a PNG of the ceiling by sample")
    ap.add_argument("--label", default="main", help="the legend of --against's hits")
    ap.add_argument(
        "--pool",
        default=None,
        help="seeds, e.g. 0,1,3,4,5: read back their --per-frame CSVs ({seed} in the names of"
        " --per-frame and --against) and report them together; nothing is computed",
    )
    args = ap.parse_args()
    if args.pool:
        seeds = [int(x) for x in args.pool.split(",")]
        rows, main_rows = pooled_rows(seeds, args.per_frame, args.against)
        what = f"seeds {args.pool}"
    else:
        seeds = [args.seed]
        rows = seed_rows(args, frame_list(args.frames, args.count))
        main_rows = {}
        if args.against is not None:
            main_rows = {frame_key(r): r for r in read_rows(args.against, args.seed)}
        what = f"seed {args.seed}"
    rows.sort(key=frame_key)
    for r in rows:
        r["on"] = r["on"] in (True, "True")
    chi2 = np.array([float(r["chi2"]) for r in rows])
    print(
        f"\n== Cramer-Rao ceiling, {what}: {len(rows)} frames, step {args.step} px =="
        f"\n  chi2 of the counts about the expected counts: median {np.nanmedian(chi2):.3f},"
        f" range {np.nanmin(chi2):.3f}-{np.nanmax(chi2):.3f}"
    )
    report(
        rows,
        main_rows,
        args.free_model,
        args.reachable,
        args.totals_only,
        args.lists_by,
        pooled=len(seeds) > 1,
    )
    if args.plot is not None:
        title = f"Beam centre: the Cramer-Rao ceiling and main, {what} ({len(rows)} frames)"
        plot(rows, main_rows, args.free_model, args.plot, title, args.label)


def seed_rows(args: argparse.Namespace, frames: list[int]) -> list[dict]:
    """The ceiling rows of ``frames`` of ``args.seed``: read back from ``--per-frame`` with
    ``--resume``, the others computed (and appended to ``--per-frame`` as they come)."""
    rows: list[dict] = []
    if args.resume and args.per_frame is not None and args.per_frame.exists():
        wanted = set(frames)
        rows = [r for r in read_rows(args.per_frame, args.seed) if int(r["frame"]) in wanted]
    done = {int(r["frame"]) for r in rows}
    out = None
    if args.per_frame is not None:
        fresh = not (args.resume and args.per_frame.exists())
        fh = open(args.per_frame, "w" if fresh else "a", newline="")  # noqa: SIM115
        out = csv.DictWriter(fh, fieldnames=FIELDS)
        if fresh:
            out.writeheader()
    for i in tqdm([i for i in frames if i not in done], desc="frames", unit="frame"):
        row = ceiling_row(args.seed, i, args.cache, args.step, args.free_model)
        if out is not None:
            out.writerow(row)
            fh.flush()
        p_free = row["p_free"] if row["p_free"] != "" else None
        rows.append({**row, "seed": args.seed, "p_free": p_free})
    if out is not None:
        fh.close()
    return rows


def pooled_rows(
    seeds: list[int], per_frame: Path | None, against: Path | None
) -> tuple[list[dict], dict[tuple[int, int], dict]]:
    """The per-frame CSVs of ``seeds`` read back (``{seed}`` in each path names the seed's
    file): the ceiling's rows and main's by (seed, frame)."""
    if per_frame is None or "{seed}" not in str(per_frame):
        raise SystemExit("--pool needs --per-frame with {seed} in its name")
    rows: list[dict] = []
    main_rows: dict[tuple[int, int], dict] = {}
    for seed in seeds:
        rows += read_rows(Path(str(per_frame).format(seed=seed)), seed)
        if against is not None:
            theirs = read_rows(Path(str(against).format(seed=seed)), seed)
            main_rows.update({frame_key(r): r for r in theirs})
    return rows, main_rows


if __name__ == "__main__":
    main()
