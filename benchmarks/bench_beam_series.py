"""Beam centres of series: each frame alone against the frames of one set-up pooled.

Simulated series: K experiments (one ``draw_experiment`` each: detector, geometry, tilt,
beamstop), M frames each (``simulate_image(exp, j)``: a sample, calibrant, dark or
direct-beam frame drawn per frame, as the default recipe draws them); sizes 256 and 1000
in turn, beam centres corner / central / edge / off the frame with equal probability (as
``bench_beam_center.py``). Every frame's centre is estimated alone, as ``predict`` does
(``estimate_beam_center(..., guess=False)``), then each series is settled
(:func:`scattertag.beam.series.settle`). Printed, on and off the frame, each alone and
pooled: frames found (confidence >= 0.3), found within the goal (2 px on the frame, 2 %
of the diagonal off it), found but wrong; the frames whose estimate pooling changed (by
how: ``pose`` refits, ``series`` adoptions) and how many of those are right.

Pooling must not pool set-ups that differ: ``--mixed`` also settles every two series of
one frame size together as if one folder held both set-ups (the frames carry different
centres), which must not make right frames wrong. ``--calibrant`` makes each series'
first frame a calibrant and takes only experiments with a tilted detector (the
b_tassone case: a calibrant's rings fix the pose, the other frames' short arcs the
centre). ``--glance`` checks every frame of a series whose found centres agree at a glance
(``agrees_at_a_glance``, the rule for a given centre and the ``settled`` one ``predict``
uses for a set-up's centre) against that centre: how often it is accepted, how often the
accepted centre is wrong, and the CPU of the glance against that of a full estimate; and
``settled_glance``'s three verdicts (agrees, uninformative: taken unseen, contradicted:
estimated) against the yes/no glance: each frame's centre (the series' when taken, else
its own estimate), right, wrong or none, and the mean CPU a 1000 x 1000 frame (glance,
plus the estimate where it runs); with ``--mixed`` also every frame of each pair's other
series (the wrong-acceptance risk: accepted, or taken unseen).

    python benchmarks/bench_beam_series.py                       # 40 x 6 frames (minutes)
    python benchmarks/bench_beam_series.py --calibrant --cache /tmp/series-frames
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import io  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from scattertag.beam.center import BeamCenterEstimate, estimate_beam_center  # noqa: E402
from scattertag.beam.series import Settled, settle  # noqa: E402

SIZES = (256, 1000)
EQUAL_PLACEMENTS = {"corner": 0.25, "center": 0.25, "edge": 0.25, "off": 0.25}


def experiments(count: int, seed: int, calibrant: bool) -> list:
    """``count`` experiments of ``seed`` (only tilted ones, their recipe drawing calibrants
    first, with ``calibrant``)."""
    from scattertag.simulate import Recipe, draw_experiment

    out, index = [], 0
    while len(out) < count:
        recipe = Recipe(size=SIZES[index % len(SIZES)], placements=EQUAL_PLACEMENTS)
        exp = draw_experiment(recipe, seed, index)
        index += 1
        if calibrant and exp.tilt is None:
            continue
        out.append(exp)
    return out


def frame(exp, j: int, calibrant: bool, cache: Path | None) -> dict:
    """Frame ``j`` of experiment ``exp``: counts, mask, true centre (x, y), kind; kept in
    ``cache`` (compressed .npz) when given."""
    from scattertag.io.files import write_bytes
    from scattertag.simulate import simulate_image

    tag = "c" if calibrant and j == 0 else "s"
    path = None if cache is None else cache / f"s{exp.seed}_e{exp.index:04d}_f{j:02d}{tag}.npz"
    if path is not None and path.exists():
        with np.load(path) as z:
            return {k: z[k] if z[k].ndim else z[k].item() for k in z.files}
    if tag == "c":
        exp = replace(exp, recipe=replace(exp.recipe, kinds={"calibrant": 1.0}))
    s = simulate_image(exp, j)
    out = {
        "counts": s.counts,
        "mask": s.mask,
        "x": s.geometry.beam_center[0],
        "y": s.geometry.beam_center[1],
        "kind": str(s.params.get("kind", "sample")),
    }
    if path is not None:
        buf = io.BytesIO()
        np.savez_compressed(buf, **out)
        write_bytes(path, buf.getvalue())
    return out


def right(e: BeamCenterEstimate, x: float, y: float, shape: tuple[int, int]) -> bool:
    """True if ``e`` lies within the goal of (x, y): 2 px on the frame, 2 % of the
    diagonal off it."""
    on = -0.5 <= x < shape[1] - 0.5 and -0.5 <= y < shape[0] - 0.5
    return math.hypot(e.x - x, e.y - y) <= (2.0 if on else 0.02 * math.hypot(*shape))


def summary(label: str, records: list[dict], key: str) -> None:
    """One line: frames found, found and right, found and wrong, on and off the frame."""
    parts = []
    for where in (True, False):
        rs = [r for r in records if r["on"] == where]
        found = [r for r in rs if r[key].found]
        good = sum(r[f"{key}_right"] for r in found)
        parts.append(
            f"{'on' if where else 'off'} {len(rs):3d}: found {len(found):3d}, right {good:3d}"
            f" ({100 * good / max(len(rs), 1):5.1f} %), wrong {len(found) - good:3d}"
        )
    print(f"  {label:28s} " + " | ".join(parts))


def changes(label: str, records: list[dict], key: str) -> None:
    """The frames whose estimate ``key`` changed, by how, and how many are right."""
    for how in ("pose", "series"):
        rs = [r for r in records if r[f"{key}_how"] == how]
        before = sum(r["alone"].found and r["alone_right"] for r in rs)
        after = sum(r[f"{key}_right"] for r in rs)
        print(
            f"  {label:28s} {how:6s}: {len(rs):3d} frames changed; right before {before:3d},"
            f" after {after:3d}"
        )


def listing(records: list[dict], key: str) -> None:
    """One line per frame whose estimate ``key`` changed: experiment, kind, before, after."""
    for r in records:
        if r[f"{key}_how"] == "own":
            continue
        a, b = r["alone"], r[key]
        ea, eb = (math.hypot(e.x - r["x"], e.y - r["y"]) for e in (a, b))
        print(
            f"    exp {r['exp']:3d} {r['kind']:11s} {r['shape'][1]}x{r['shape'][0]}"
            f" on={r['on']!s:5s} alone {a.method:9s} {a.confidence:.2f} {ea:7.1f} px"
            f" -> {r[f'{key}_how']:6s} {b.confidence:.2f} {eb:7.1f} px"
        )


def glance(records: list[dict], members: list[int], frames: list[dict]) -> None:
    """For a series whose found centres agree once settled, every frame checked at a glance
    (``agrees_at_a_glance``, as a settled centre is offered and as a given one is) against
    that centre: accepted or not, and its CPU time."""
    from scattertag.beam.series import agreeing_centre

    shape = records[members[0]]["shape"]
    settled = [s.estimate for s in settle([records[i]["alone"] for i in members], shape)]
    found = [e for e in settled if e.found]
    centre = agreeing_centre(found, shape) if len(found) >= 2 else None
    for i, f in zip(members, frames):
        records[i]["centre"] = centre
        looks = glances(f, centre, records[i]) if centre is not None else None
        records[i]["glance"] = looks


def glances(f: dict, centre: tuple[float, float], r: dict) -> dict:
    """The frame ``f`` (true centre in ``r``) checked at a glance against ``centre``: per
    rule (``settled`` as ``predict`` offers a set-up's centre, ``given`` as a given centre),
    accepted and CPU seconds; and whether ``centre`` is right for the frame."""
    from scattertag.beam.center import agrees_at_a_glance, settled_glance

    out: dict = {}
    for rule in ("given", "settled"):
        c0 = time.process_time()
        out[rule] = agrees_at_a_glance(f["counts"], f["mask"], centre, settled=rule == "settled")
        out[f"{rule}_cpu"] = time.process_time() - c0
    c0 = time.process_time()
    out["verdict"] = settled_glance(f["counts"], f["mask"], centre)
    out["verdict_cpu"] = time.process_time() - c0
    dummy = BeamCenterEstimate(*centre, 1.0, "series", True)
    out["right"] = right(dummy, r["x"], r["y"], r["shape"])
    return out


def glance_summary(records: list[dict]) -> None:
    """How often a glance accepts the series' centre, how often that centre is then wrong,
    and CPU medians (glance vs full estimate, 1000 x 1000 frames)."""
    checked = [r for r in records if r.get("glance") is not None]
    big = [r for r in checked if r["shape"] == (1000, 1000)]
    for rule in ("given", "settled"):
        took = [r for r in checked if r["glance"][rule]]
        wrong = [r for r in took if not r["glance"]["right"]]
        own_wrong = [r for r in took if r["alone"].found and not r["alone_right"]]
        own_right = [r for r in took if r["alone"].found and r["alone_right"]]
        print(
            f"glance ({rule}): {len(checked)} frames of series whose found centres agree;"
            f" accepted {len(took)}, of which the series' centre is wrong for {len(wrong)};"
            f" their own estimate found and right {len(own_right)}, found and wrong"
            f" {len(own_wrong)}, not found {len(took) - len(own_right) - len(own_wrong)}"
        )
        if big:
            g = statistics.median(r["glance"][f"{rule}_cpu"] for r in big)
            e = statistics.median(r["cpu"] for r in big)
            print(
                f"  1000 x 1000 ({len(big)}): median CPU glance {1e3 * g:.1f} ms,"
                f" estimate {1e3 * e:.1f} ms"
            )
    verdicts(checked, big)


def verdicts(checked: list[dict], big: list[dict]) -> None:
    """The settled glance's three verdicts (``settled_glance``) against its yes/no rule on
    the frames of settled series: what each frame's centre becomes (the series' when taken,
    else its own estimate), right and wrong, and the CPU a frame costs (glance, plus the
    estimate when it is still run)."""
    from scattertag.beam.center import AGREES, CONTRADICTED, UNINFORMATIVE

    def outcome(r: dict, taken: bool) -> str:
        if taken:
            return "right" if r["glance"]["right"] else "wrong"
        if not r["alone"].found:
            return "none"  # an error row in predict
        return "right" if r["alone_right"] else "wrong"

    counts = {
        v: sum(r["glance"]["verdict"] == v for r in checked)
        for v in (AGREES, UNINFORMATIVE, CONTRADICTED)
    }
    print(f"settled glance verdicts ({len(checked)} frames): {counts}")
    if big:
        every = statistics.mean(r["cpu"] for r in big)
        print(f"  every frame estimated: mean CPU a 1000 x 1000 frame {1e3 * every:.1f} ms")
    for label, taken, cpu in (
        ("yes/no glance", lambda r: r["glance"]["settled"], lambda r: r["glance"]["settled_cpu"]),
        (
            "three verdicts",
            lambda r: r["glance"]["verdict"] != CONTRADICTED,
            lambda r: r["glance"]["verdict_cpu"],
        ),
    ):
        out = [outcome(r, taken(r)) for r in checked]
        estimated = [r for r in big if not taken(r)]
        mean = (
            statistics.mean(cpu(r) + (0.0 if taken(r) else r["cpu"]) for r in big) if big else 0.0
        )
        for r, o in zip(checked, out):
            if o == "wrong":
                a, v = r["alone"], r["glance"]["verdict"]
                off = math.hypot(a.x - r["x"], a.y - r["y"])
                print(
                    f"    wrong: exp {r['exp']:3d} {r['kind']:11s} {r['shape'][1]}x{r['shape'][0]}"
                    f" on={r['on']!s:5s} {v:13s} series centre right {r['glance']['right']!s:5s}"
                    f" alone {a.method:9s} {a.confidence:.2f} {off:7.1f} px"
                )
        print(
            f"  {label:15s}: right {out.count('right')}, wrong {out.count('wrong')}, none"
            f" {out.count('none')}; 1000 x 1000: {len(estimated)} of {len(big)} estimated,"
            f" mean CPU a frame {1e3 * mean:.1f} ms"
        )


def glance_across(records: list[dict], series: list[list[int]], pairs, exps, args) -> None:
    """Every frame of one series of a ``--mixed`` pair checked at a glance against the other
    series' settled centre (another set-up of the folder offering its centre): accepted
    wrong centres per rule."""
    from scattertag.beam.center import CONTRADICTED, UNINFORMATIVE

    checked, took = 0, {"given": 0, "settled": 0}
    verdicts, unseen = 0, []  # the other set-up's centre taken (three verdicts), unseen
    for a, b in pairs:
        for mine, theirs in ((a, b), (b, a)):
            centre = records[series[theirs][0]].get("centre")
            if centre is None:
                continue
            for j, i in enumerate(series[mine]):
                f = frame(exps[mine], j, args.calibrant, args.cache)
                looks = glances(f, centre, records[i])
                if looks["right"]:
                    continue  # the two set-ups share a centre for this frame
                checked += 1
                for rule in took:
                    took[rule] += looks[rule]
                if looks["verdict"] == UNINFORMATIVE:
                    unseen.append(records[i])
                verdicts += looks["verdict"] != CONTRADICTED
    print(
        f"glance across set-ups: {checked} frames offered the other series' (wrong) centre;"
        f" accepted: given rule {took['given']}, settled rule {took['settled']}, three verdicts"
        f" {verdicts} ({len(unseen)} unseen: own estimate found and right"
        f" {sum(r['alone'].found and r['alone_right'] for r in unseen)}, found and wrong"
        f" {sum(r['alone'].found and not r['alone_right'] for r in unseen)}, not found"
        f" {sum(not r['alone'].found for r in unseen)})"
    )
    for r in unseen:
        a = r["alone"]
        off = math.hypot(a.x - r["x"], a.y - r["y"])
        print(
            f"    unseen: exp {r['exp']:3d} {r['kind']:11s} {r['shape'][1]}x{r['shape'][0]}"
            f" alone {a.method:9s} {a.confidence:.2f} {off:7.1f} px"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=40)
    parser.add_argument("--frames", type=int, default=6, help="frames per experiment")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--calibrant", action="store_true")
    parser.add_argument("--mixed", action="store_true")
    parser.add_argument("--list", action="store_true", help="print every changed frame")
    parser.add_argument(
        "--glance",
        action="store_true",
        help="also check every frame at a glance against its settled series' centre",
    )
    args = parser.parse_args()
    if args.cache is not None:
        args.cache.mkdir(parents=True, exist_ok=True)
    records: list[dict] = []
    series: list[list[int]] = []
    exps = experiments(args.experiments, args.seed, args.calibrant)
    for exp in tqdm(exps, desc="series", unit="series"):
        members, kept = [], []
        for j in range(args.frames):
            f = frame(exp, j, args.calibrant, args.cache)
            counts = f["counts"]
            c0 = time.process_time()
            est = estimate_beam_center(counts, f["mask"], guess=False)
            cpu = time.process_time() - c0
            kept.append(f)
            x, y = float(f["x"]), float(f["y"])
            members.append(len(records))
            records.append(
                {
                    "exp": exp.index,
                    "shape": counts.shape,
                    "x": x,
                    "y": y,
                    "on": -0.5 <= x < counts.shape[1] - 0.5 and -0.5 <= y < counts.shape[0] - 0.5,
                    "tilted": exp.tilt is not None,
                    "kind": f["kind"],
                    "alone": est,
                    "alone_right": right(est, x, y, counts.shape),
                    "cpu": cpu,
                }
            )
        series.append(members)
        if args.glance:
            glance(records, members, kept)

    def pooled(key: str, groups: list[list[int]]) -> None:
        for g in groups:
            settled: list[Settled] = settle(
                [records[i]["alone"] for i in g], records[g[0]]["shape"]
            )
            for i, s in zip(g, settled):
                r = records[i]
                r[key], r[f"{key}_how"] = s.estimate, s.how
                r[f"{key}_right"] = right(s.estimate, r["x"], r["y"], r["shape"])

    pooled("pooled", series)
    print(
        f"\n== {len(series)} series x {args.frames} frames, seed {args.seed}"
        f"{', calibrant first, tilted detectors' if args.calibrant else ''} =="
    )
    for label, rs in (
        ("all", records),
        ("tilted detectors", [r for r in records if r["tilted"]]),
    ):
        if not rs:
            continue
        print(f"{label} ({len(rs)} frames):")
        summary("each frame alone", rs, "alone")
        summary("series pooled", rs, "pooled")
        changes("series pooled", rs, "pooled")
        if args.list and label == "all":
            listing(rs, "pooled")
    if args.glance:
        glance_summary(records)
    if args.mixed:
        by_size: dict[tuple, list[list[int]]] = {}
        for g in series:
            by_size.setdefault(records[g[0]]["shape"], []).append(g)
        mixed = [
            gs[k] + (gs[k + 1] if k + 1 < len(gs) else [])
            for gs in by_size.values()
            for k in range(0, len(gs), 2)
        ]
        if args.glance:
            first = {g[0]: n for n, g in enumerate(series)}
            pairs = [
                (first[gs[k][0]], first[gs[k + 1][0]])
                for gs in by_size.values()
                for k in range(0, len(gs) - 1, 2)
            ]
            glance_across(records, series, pairs, exps, args)
        pooled("mixed", mixed)
        print(f"two set-ups pooled as one ({len(mixed)} groups of two series, one size):")
        summary("each frame alone", records, "alone")
        summary("two series pooled", records, "mixed")
        changes("two series pooled", records, "mixed")
        if args.list:
            listing(records, "mixed")


if __name__ == "__main__":
    main()
