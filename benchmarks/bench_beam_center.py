"""Beam centre from the image: accuracy on real frames and on simulated frames, and speed.

1. **Real frames** (``--real``, default ``../shared/real-dev``): every frame listed in its
   ``centres.tsv`` is read with scattertag's reader and its centre estimated; one line per
   frame (error in pixels and in % of the frame diagonal, confidence, method), then the
   median error of the frames with the centre on the frame (goal <= 3 px) and off it
   (goal <= 2 % of the diagonal), and the frames that miss; then the frames of one shape
   settled together as ``predict`` settles a folder's set-up
   (:func:`scattertag.beam.series.settle`): the frames that changed and both medians again.
2. **Simulated frames** (``--count``, default 500; ``--seed`` fixed): sizes 256, 1000 and
   2000 in turn, the default recipe's catalogue detectors, setups and grazing-incidence
   experiments, beam centres drawn corner / central / edge / off the frame with equal
   probability (strips in WAXS may sit "far"), every image kind of the default recipe
   (samples, calibrants, dark and direct-beam frames). Aggregates: the fraction within
   2 px with the centre on the frame (goal >= 95 %) and within 2 % of the diagonal off it
   (goal >= 90 %), overall (the headline), without the dark frames (no beam), split by
   whether the sample shows anything (dark frames and frames whose sample terms are all
   hidden show nothing, though a beamstop's edge may still give the centre), and by
   placement, size, setup (SAXS / WAXS), detector family, beamstop, visible sample
   (``ring`` when a ring, lattice or powder term is visible, else the first visible term's
   family, ``nothing visible`` when the sample terms are all hidden) and image kind; how
   the confidence separates right from wrong. ``--diagnose`` also finds, for each miss,
   the estimators' candidate nearest the true centre (a miss with a candidate within the
   goal is the choice's fault, one without is the candidates') and classes the on-frame
   misses (a candidate within 2 px passed over; the nearest 2-6 px off; 6-20 px; none
   within 20 px; dark frames) overall and by setup, detector tilt (from the drawn
   experiment), beamstop, exposure (mean counts a valid pixel: weak < 2, low < 20),
   visible sample and chosen method; ``--per-frame FILE`` writes one CSV row per frame.
   ``--no-guess`` estimates as ``predict`` does (``guess=False``: the position of a centre
   not found is discarded, so it is not refined, and a frame that will not be found may be
   given up early): read the frames found and their positions, not the misses.
3. **Speed**: the median CPU time (this process's, so other work on the machine does not
   count) and wall time of :func:`estimate_beam_center` on the 1000 x 1000 frames
   (goal <= 30 ms), single-threaded (this script sets OMP_NUM_THREADS=1 before numpy loads).
   ``--compare scattertag_old`` (another version, copied as a package of that name with its
   imports renamed: ``git archive main src/scattertag | tar -x -C OLDROOT``, the folder
   moved to OLDROOT/scattertag_old, ``sed 's/scattertag\\./scattertag_old./g; s/from
   scattertag /from scattertag_old /g'`` over it) times instead this version and that one on
   the same 1000 x 1000 frames (of the first ``--count``), alternating in one process so
   both see the same load, with ``guess=True`` and ``guess=False``, and prints both medians
   and means, the ratio of the medians, the median per-frame ratio and the ratio of the
   means, and the frames whose estimates differ (a speed change should list none).

    python benchmarks/bench_beam_center.py                       # everything (about 20 min)
    python benchmarks/bench_beam_center.py --count 60 --no-real  # quick look
    python benchmarks/bench_beam_center.py --cache /tmp/bc-frames  # keep the frames for reruns
    python benchmarks/bench_beam_center.py --no-real --seed 1 --count 150 --diagnose  # tuning set
    python benchmarks/bench_beam_center.py --no-real --no-guess --per-frame F.csv  # predict's
    python benchmarks/bench_beam_center.py --no-real --count 200 \
        --compare scattertag_old  # PYTHONPATH=OLDROOT:src
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import io  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from scattertag.beam.candidates import candidates  # noqa: E402
from scattertag.beam.center import CONFIDENCE_THRESHOLD, estimate_beam_center  # noqa: E402

SIZES = (256, 1000, 2000)
EQUAL_PLACEMENTS = {"corner": 0.25, "center": 0.25, "edge": 0.25, "off": 0.25}


def timed(counts: np.ndarray, valid: np.ndarray | None, guess: bool = True):
    """(estimate, wall seconds, CPU seconds of this process) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    est = estimate_beam_center(counts, valid, guess=guess)
    return est, time.perf_counter() - t0, time.process_time() - c0


def on_frame(x: float, y: float, shape: tuple[int, int]) -> bool:
    """True if (x, y) lies on a frame of ``shape`` (rows, cols)."""
    return -0.5 <= x < shape[1] - 0.5 and -0.5 <= y < shape[0] - 0.5


def real_frames(folder: Path) -> None:
    """Per-frame errors against ``centres.tsv`` and the two medians."""
    from scattertag.io.readers import read_frames

    table = folder / "centres.tsv"
    if not table.exists():
        print(f"(no {table}; real frames skipped)")
        return
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    print(f"\n== real frames: {folder} ({len(rows)} frames) ==")
    print(
        f"{'frame':44s} {'shape':>11s} {'given (x, y)':>17s} {'estimated (x, y)':>17s}"
        f" {'err px':>7s} {'err %d':>6s} {'conf':>5s} {'method':9s} {'ms':>6s}"
    )
    errors: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    estimates: dict[str, tuple] = {}
    for row in rows:
        frame = next(read_frames(folder / row["local_path"]))
        counts = frame.counts
        x, y = float(row["beam_x"]), float(row["beam_y"])
        est, sec, _ = timed(counts, frame.valid)
        estimates[row["local_path"]] = (est, counts.shape, x, y)
        err = math.hypot(est.x - x, est.y - y)
        pct = 100 * err / math.hypot(*counts.shape)
        where = "on" if on_frame(x, y, counts.shape) else "off"
        errors[where].append((row["local_path"], err, pct))
        shape = f"{counts.shape[1]}x{counts.shape[0]}"
        print(
            f"{row['local_path'][:44]:44s} {shape:>11s} {x:8.1f},{y:8.1f} {est.x:8.1f},{est.y:8.1f}"
            f" {err:7.1f} {pct:6.2f} {est.confidence:5.2f} {est.method:9s} {1000 * sec:6.0f}"
            f"  centre {where} frame"
        )
    on, off = errors["on"], errors["off"]
    if on:
        med = statistics.median(e for _, e, _ in on)
        print(
            f"centre on the frame : {len(on):2d} frames, median error {med:.2f} px (goal <= 3 px)"
        )
        for name, e, _ in on:
            if e > 3:
                print(f"    misses 3 px: {name} ({e:.1f} px)")
    if off:
        med = statistics.median(p for _, _, p in off)
        print(
            f"centre off the frame: {len(off):2d} frames, median error {med:.2f} % of the diagonal"
            " (goal <= 2 %)"
        )
        for name, _, p in off:
            if p > 2:
                print(f"    misses 2 %: {name} ({p:.2f} % of the diagonal)")
    series_pooled(estimates)


def series_pooled(estimates: dict[str, tuple]) -> None:
    """The frames of one shape (one folder) settled together, as ``predict`` does
    (:func:`scattertag.beam.series.settle`): the frames that changed, and both medians."""
    from scattertag.beam.series import settle

    by_shape: dict[tuple, list[str]] = defaultdict(list)
    for name, (_, shape, _, _) in estimates.items():
        by_shape[shape].append(name)
    pooled = {name: est for name, (est, _, _, _) in estimates.items()}
    print("series pooled (frames of one shape settled together, as predict does):")
    for shape, names in by_shape.items():
        for name, s in zip(names, settle([pooled[n] for n in names], shape)):
            if s.how == "own":
                continue
            est, _, x, y = estimates[name]
            err = math.hypot(s.estimate.x - x, s.estimate.y - y)
            origin = ", ".join(names[i][:20] for i in s.origin)
            pct = 100 * err / math.hypot(*shape)
            print(
                f"    {name[:44]:44s} {s.how:6s} from {origin}: ({s.estimate.x:.1f},"
                f" {s.estimate.y:.1f}), {err:.1f} px, {pct:.2f} %"
                f" (alone {est.method}, {est.confidence:.2f})"
            )
            pooled[name] = s.estimate
    for where in ("on", "off"):
        errs = []
        for name, (_, shape, x, y) in estimates.items():
            e = pooled[name]
            if on_frame(x, y, shape) == (where == "on"):
                err = math.hypot(e.x - x, e.y - y)
                errs.append(err if where == "on" else 100 * err / math.hypot(*shape))
        if errs:
            unit = "px" if where == "on" else "% of the diagonal"
            print(f"  centre {where} the frame: median error {statistics.median(errs):.2f} {unit}")


def real_map(folder: Path) -> None:
    """Tag mAP on ``folder`` (labels.tsv) with centres estimated and with centres.tsv's."""
    import tempfile

    import scattertag
    from scattertag.adapt.labels import read_labels
    from scattertag.evaluate import mean_average_precision

    table = read_labels(folder / "labels.tsv", folder / "centres.tsv")
    known = {Path(item.source).name: table.labels[i] for i, item in enumerate(table.items)}
    with open(folder / "centres.tsv", newline="") as fh:
        centres = list(csv.DictReader(fh, delimiter="\t"))
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "given.csv"
        with open(manifest, "w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["path", "beam_x", "beam_y"])
            for row in centres:
                path = (folder / row["local_path"]).resolve()  # the manifest is elsewhere
                out.writerow([path, row["beam_x"], row["beam_y"]])
        estimated = scattertag.predict([folder])
        given = scattertag.predict(manifest=manifest)
    scores = {}
    for name, tagged in (("estimated", estimated), ("given", given)):
        scores[name] = {Path(r["path"]).name: r for r in tagged.rows if not r["error"]}
    both = sorted(set(scores["estimated"]) & set(scores["given"]) & set(known))
    tags = [t for t in table.tags if t in estimated.rows[0]]
    truth = np.array([[known[n][table.tags.index(t)] for t in tags] for n in both])
    print(f"\n== tag mAP on {folder}: {len(both)} frames tagged both ways, {len(tags)} tags ==")
    for name in ("estimated", "given"):
        s = np.array([[float(scores[name][n][t]) for t in tags] for n in both])
        print(f"  centres {name:9s}: mAP {mean_average_precision(truth, s):.3f}")
    untagged = sorted(set(known) - set(scores["estimated"]))
    print(f"  not tagged with estimated centres: {', '.join(untagged) or 'none'}")


def sample_kind(params: dict) -> str:
    """The frame's visible sample: ``ring`` if a ring, lattice or powder term is visible,
    else the first visible main term's family (``diffuse low-q``, ``halo`` ...), else
    ``nothing visible`` (or the image kind for calibrant, dark and direct-beam frames)."""
    kind = str(params.get("kind", "sample"))
    if kind != "sample":
        return kind
    seen = [
        t["key"].split(".")[-1].split(":")[0]
        for t in params.get("terms", [])
        if t["role"] == "sample" and t["visibility"].get("visible")
    ]
    if any("ring" in k or "powder" in k or "lattice" in k for k in seen):
        return "ring"
    return seen[0] if seen else "nothing visible"


def simulated_frame(seed: int, i: int, cache: Path | None) -> dict:
    """Frame ``i`` of the benchmark set: counts, mask, centre (x, y), size, placement, kind.

    Sizes cycle through SIZES; with ``cache`` the frame is kept there as a compressed .npz
    (written atomically) and read back on later runs.
    """
    from scattertag.io.files import write_bytes

    path = cache / f"seed{seed}_{i:05d}.npz" if cache is not None else None
    if path is not None and path.exists():
        with np.load(path) as z:
            return {k: z[k] if z[k].ndim else z[k].item() for k in z.files}
    from scattertag.simulate import Recipe, draw_experiment, simulate_image

    size = SIZES[i % len(SIZES)]
    exp = draw_experiment(Recipe(size=size, placements=EQUAL_PLACEMENTS), seed, i)
    s = simulate_image(exp, 0)
    frame = {
        "counts": s.counts,
        "mask": s.mask,
        "x": s.geometry.beam_center[0],
        "y": s.geometry.beam_center[1],
        "size": size,
        "placement": str(exp.params["placement"]),
        "kind": str(s.params.get("kind", "sample")),
        "detector": str(exp.params.get("detector", {}).get("name", "reference")),
        "setup": str(exp.params.get("setup", "saxs")),
        "beamstop": str((exp.params.get("beamstop") or {}).get("kind") or "none"),
        "sample": sample_kind(s.params),
    }
    if path is not None:
        buf = io.BytesIO()
        np.savez_compressed(buf, **frame)
        write_bytes(path, buf.getvalue())
    return frame


#: Record fields the simulated frames are broken down by.
CATEGORIES = (
    "placement",
    "size",
    "setup",
    "tilt",
    "detector",
    "beamstop",
    "sample",
    "kind",
    "exposure",
)
#: Fields the on-frame misses are broken down by under --diagnose.
MISS_CATEGORIES = ("setup", "tilt", "beamstop", "exposure", "sample", "method")


def tilt_band(seed: int, i: int) -> str:
    """The detector tilt of benchmark frame ``i`` in 10-degree bands (``none`` untilted),
    from its drawn experiment (cheap: nothing is simulated; the cache does not keep it)."""
    from scattertag.simulate import Recipe, draw_experiment

    exp = draw_experiment(Recipe(size=SIZES[i % len(SIZES)], placements=EQUAL_PLACEMENTS), seed, i)
    tilt = exp.params.get("tilt")
    if not tilt:
        return "none"
    lo = 10 * int(tilt["tilt_deg"] // 10)
    return f"{lo}-{lo + 10} deg"


def exposure_band(counts: np.ndarray, mask: np.ndarray) -> str:
    """``weak`` (under 2 counts a valid pixel on average), ``low`` (under 20) or ``bright``."""
    from scattertag.beam.center import valid_pixels

    ok = valid_pixels(counts, mask)
    mean = float(counts[ok].mean()) if ok.any() else 0.0
    return "weak" if mean < 2 else "low" if mean < 20 else "bright"


#: Bands of (nearest candidate distance / goal tolerance) for the misses: a wrong candidate
#: ranked first, a right candidate just too far off (2-6 px on the frame), no candidate.
NEAREST_BANDS = (
    (0.0, 1.0, "a candidate within the goal, passed over"),
    (1.0, 3.0, "nearest candidate within 3x the goal"),
    (3.0, 10.0, "nearest candidate within 10x the goal"),
    (10.0, math.inf, "no candidate within 10x the goal"),
)


def nearest_candidate(counts: np.ndarray, mask: np.ndarray, x: float, y: float) -> dict:
    """The estimators' candidate nearest the true centre: its method, its distance (px) and
    the goal's tolerance (2 px on the frame, 2 % of the diagonal off it)."""
    from scattertag.beam import center as bc

    ok = bc.valid_pixels(counts, mask)
    cands = candidates(counts, ok) if np.count_nonzero(ok) >= 256 else []
    dist = [math.hypot(c.x - x, c.y - y) for c in cands]
    k = int(np.argmin(dist)) if dist else -1
    tol = 2.0 if on_frame(x, y, counts.shape) else 0.02 * math.hypot(*counts.shape)
    return {
        "nearest": round(dist[k], 2) if dist else math.inf,
        "nearest_method": cands[k].method if dist else "none",
        "tolerance": round(tol, 2),
    }


def simulated(
    count: int,
    seed: int,
    cache: Path | None,
    diagnose: bool = False,
    per_frame: Path | None = None,
    guess: bool = True,
) -> None:
    """Aggregate accuracy on ``count`` simulated frames, and speed at 1000 x 1000; with
    ``guess=False`` (``predict``'s estimate) the positions of frames not found are not
    refined, so their errors say nothing: read the frames found."""
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    records = []
    times_1000 = []
    for i in tqdm(range(count), desc="simulated frames", unit="frame"):
        f = simulated_frame(seed, i, cache)
        counts = f["counts"]
        est, sec, cpu = timed(counts, f["mask"], guess)
        if counts.shape == (1000, 1000):
            times_1000.append((sec, cpu))
        x, y = float(f["x"]), float(f["y"])
        err = math.hypot(est.x - x, est.y - y)
        diag = math.hypot(*counts.shape)
        on = on_frame(x, y, counts.shape)
        hit = err <= 2.0 if on else err <= 0.02 * diag
        record = {
            "frame": i,
            "size": int(f["size"]),
            "placement": f["placement"],
            "kind": f["kind"],
            "setup": str(f.get("setup", "?")),
            "detector": str(f["detector"]).split()[0],
            "beamstop": str(f.get("beamstop", "?")),
            "sample": str(f.get("sample", "?")),
            "tilt": tilt_band(seed, i),
            "exposure": exposure_band(counts, f["mask"]),
            "on": on,
            "hit": hit,
            "error_px": round(err, 2),
            "error_pct": round(100 * err / diag, 3),
            "conf": round(est.confidence, 3),
            "method": est.method,
        }
        if diagnose:
            record.update(nearest_candidate(counts, f["mask"], x, y))
        records.append(record)

    def line(label: str, recs: list[dict]) -> None:
        on = [r for r in recs if r["on"]]
        off = [r for r in recs if not r["on"]]
        fmt = lambda rs: (  # noqa: E731
            f"{100 * sum(r['hit'] for r in rs) / len(rs):5.1f} % of {len(rs):3d}" if rs else "   -"
        )
        print(
            f"  {label:28s} on frame within 2 px: {fmt(on):14s}  off frame within 2 %: {fmt(off)}"
        )

    how = "" if guess else ", guess=False"
    print(f"\n== {count} simulated frames (seed {seed}, sizes {SIZES}{how}) ==")
    line("all", records)
    line("without dark frames", [r for r in records if r["kind"] != "dark"])
    # frames whose sample shows nothing (dark, or every sample term hidden) stay in the
    # headline: a beamstop's edge or the detector's obliquity may still give their centre
    blank = ("dark", "nothing visible")
    line("sample shows something", [r for r in records if r["sample"] not in blank])
    line("sample shows nothing", [r for r in records if r["sample"] in blank])
    for key in CATEGORIES:
        for value in sorted({r[key] for r in records}):
            line(f"{key} {value}", [r for r in records if r[key] == value])
    if diagnose:
        misses = [r for r in records if not r["hit"] and r["kind"] != "dark"]
        print(f"  misses (not dark) by the nearest candidate's distance, {len(misses)} frames:")
        for lo, hi, what in NEAREST_BANDS:
            n = sum(lo <= r["nearest"] / r["tolerance"] < hi for r in misses)
            print(f"    {what:44s} {n:4d}")
        missed_on(records)
    if per_frame is not None:
        from scattertag.io.files import write_text

        buf = io.StringIO()
        out = csv.DictWriter(buf, fieldnames=list(records[0]))
        out.writeheader()
        out.writerows(records)
        write_text(per_frame, buf.getvalue())
        print(f"  per-frame results: {per_frame}")
    sure = [r for r in records if r["conf"] >= CONFIDENCE_THRESHOLD]
    print(
        f"  confidence >= {CONFIDENCE_THRESHOLD}: {len(sure)} of {len(records)} frames,"
        f" {100 * sum(r['hit'] for r in sure) / max(len(sure), 1):.1f} % of them within the goal;"
        f" below: {sum(not r['hit'] for r in records if r not in sure)} misses,"
        f" {sum(r['hit'] for r in records if r not in sure)} hits"
    )
    line("confidence >= threshold", sure)
    if times_1000:
        wall = 1000 * statistics.median(w for w, _ in times_1000)
        cpu = 1000 * statistics.median(c for _, c in times_1000)
        load = os.getloadavg()[0]
        print(
            f"\nspeed per 1000 x 1000 frame ({len(times_1000)} frames,"
            f" OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; goal <= 30 ms):"
            f" median CPU time {cpu:.1f} ms, median wall time {wall:.1f} ms"
            f" (load average {load:.1f} on {os.cpu_count()} cores: wall time includes waiting)"
        )


def band(r: dict) -> str:
    """A miss's class: ``dark``, ``passed over`` (a candidate within the goal), ``near``
    (the nearest within 3x the goal), ``far`` (within 10x) or ``none`` (no candidate there)."""
    if r["kind"] == "dark":
        return "dark"
    ratio = r["nearest"] / r["tolerance"]
    return "passed over" if ratio < 1 else "near" if ratio < 3 else "far" if ratio < 10 else "none"


def missed_on(records: list[dict]) -> None:
    """The on-frame misses by class (:func:`band`), overall and by MISS_CATEGORIES."""
    classes = ("passed over", "near", "far", "none", "dark")
    on = [r for r in records if r["on"]]
    misses = [r for r in on if not r["hit"]]
    print(f"  on-frame misses by class, {len(misses)} of {len(on)} frames:")
    print(f"    {'':26s} {'frames':>6s} {'hits':>5s} " + " ".join(f"{c:>11s}" for c in classes))
    for key in (None, *MISS_CATEGORIES):
        values = [None] if key is None else sorted({str(r[key]) for r in on})
        for value in values:
            group = on if key is None else [r for r in on if str(r[key]) == value]
            n = [sum(band(r) == c for r in group if not r["hit"]) for c in classes]
            label = "all" if key is None else f"{key} {value}"
            print(
                f"    {label[:26]:26s} {len(group):6d} {sum(r['hit'] for r in group):5d} "
                + " ".join(f"{k:11d}" for k in n)
            )


def other_estimate(other: Path):
    """``estimate_beam_center`` of another version: a copy of the package importable under
    another name (e.g. ``scattertag_old``, its own imports renamed so; the estimator spans
    several modules of ``scattertag.beam``), or a single-file center.py of before the split
    (its helpers then this version's)."""
    import importlib
    import importlib.util
    import sys

    if other.suffix == ".py":
        spec = importlib.util.spec_from_file_location("beam_center_other", other)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        return module.estimate_beam_center
    return importlib.import_module(f"{other}.beam.center").estimate_beam_center


def paired_speed(other: Path, count: int, seed: int, cache: Path | None) -> None:
    """CPU time of this estimate_beam_center and another version's (:func:`other_estimate`)
    on the same 1000 x 1000 frames (of the first ``count``), each frame twice, alternating in
    one process so both see the same load (the order flipped on the second pass), with
    ``guess=True`` (the benchmark's) and ``guess=False`` (``predict``'s): both medians and
    means, the ratio of the medians, the median per-frame ratio and the ratio of the means,
    overall and on the frames whose estimate (this version's) is a ring or cone fit; and the
    frames whose estimates differ."""
    theirs_estimate = other_estimate(other)
    frames = [i for i in range(count) if SIZES[i % len(SIZES)] == 1000]
    for guess in (True, False):
        ours: list[float] = []
        theirs: list[float] = []
        rings: list[bool] = []
        differ: set[int] = set()
        for rep in range(2):
            for i in tqdm(frames, desc=f"guess={guess}, pass {rep + 1}", unit="frame"):
                f = simulated_frame(seed, i, cache)
                order = [(estimate_beam_center, ours), (theirs_estimate, theirs)]
                got = []
                for estimate, times in order[:: 1 if rep == 0 else -1]:
                    c0 = time.process_time()
                    est = estimate(f["counts"], f["mask"], guess=guess)
                    times.append(time.process_time() - c0)
                    got.append((est.x, est.y, est.confidence, est.method, est.sigma))
                    if times is ours:
                        rings.append(est.method in ("rings", "cone"))
                if got[0] != got[1]:
                    differ.add(i)
        print(
            f"\nguess={guess}: paired CPU per 1000 x 1000 frame, this / {other}; estimates"
            f" (x, y, confidence, method, sigma) that differ: {sorted(differ) or 'none'}"
        )
        for label, pick in (("all", [True] * len(ours)), ("ring or cone fits", rings)):
            a = [t for t, p in zip(ours, pick) if p]
            b = [t for t, p in zip(theirs, pick) if p]
            if not a:
                continue
            ma, mb = statistics.median(a), statistics.median(b)
            print(
                f"  {label} ({len(a) // 2} frames x 2): this {1000 * ma:.1f} ms"
                f" (mean {1000 * statistics.mean(a):.1f}), other {1000 * mb:.1f} ms"
                f" (mean {1000 * statistics.mean(b):.1f}); ratio of medians {ma / mb:.3f},"
                f" median per-frame ratio {statistics.median(x / y for x, y in zip(a, b)):.3f},"
                f" ratio of means {statistics.mean(a) / statistics.mean(b):.3f}"
                f" (load average {os.getloadavg()[0]:.1f})"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=500, help="simulated frames (default 500)")
    ap.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    ap.add_argument("--real", type=Path, default=Path("../shared/real-dev"))
    ap.add_argument("--no-real", action="store_true", help="skip the real frames")
    ap.add_argument(
        "--map", action="store_true", help="also tag the real frames: mAP, estimated vs given"
    )
    ap.add_argument(
        "--cache", type=Path, default=None, help="keep simulated frames here for later runs"
    )
    ap.add_argument(
        "--diagnose", action="store_true", help="also find each frame's nearest candidate"
    )
    ap.add_argument("--per-frame", type=Path, default=None, help="write one CSV row per frame")
    ap.add_argument(
        "--no-guess",
        action="store_true",
        help="estimate as predict does (guess=False: a centre not found is not refined)",
    )
    ap.add_argument("--simulate-only", action="store_true", help="only fill --cache (no estimates)")
    ap.add_argument(
        "--compare",
        type=Path,
        default=None,
        help="another version (a package name such as scattertag_old on the path, or a"
        " pre-split center.py): time both on the same 1000 px frames",
    )
    args = ap.parse_args()
    if args.simulate_only:
        if args.cache is not None:
            args.cache.mkdir(parents=True, exist_ok=True)
        for i in tqdm(range(args.count), desc="simulating", unit="frame"):
            simulated_frame(args.seed, i, args.cache)
        return
    if not args.no_real:
        real_frames(args.real)
        if args.map:
            real_map(args.real)
    if args.compare is not None:  # only the side-by-side timing
        paired_speed(args.compare, args.count, args.seed, args.cache)
    elif args.count > 0:
        simulated(
            args.count, args.seed, args.cache, args.diagnose, args.per_frame, not args.no_guess
        )


if __name__ == "__main__":
    main()
