"""Beam centre from the image: CPU by stage, and what a cascade (stop early) could save.

Each stage of :func:`scattertag.beam.center.estimate_beam_center` is timed by wrapping the
package's functions with CPU timers (one thread; the time goes to the outermost wrapped
function, so the polish's own ridge trace counts as polish, not as ridges). Then, per
frame, the choice (:func:`scattertag.beam.choice._choose`) is replayed on each prefix of
the candidates in the order ``candidates`` makes them (ring fit, gradient lines, arc
consensus, beamstop circles, point symmetry, shadow axes, isotropy search): a prefix
whose choice (method, x, y, sigma, confidence) equals the full run's could have stopped
there with the same estimate, since everything after the choice (fallbacks, polish,
falloff) reads only the chosen candidate, its confidence and the levels. The earliest
such prefix of each frame is what an ideal cascade (one that knew the answer) would
stop at; its saving (the later stages' CPU) bounds what any rule for stopping early can
save. ``--same position`` also accepts a prefix whose choice differs in confidence only.

    python benchmarks/profile_beam_stages.py --count 500 --seed 0 --cache DIR --size 1000
    python benchmarks/profile_beam_stages.py ... --no-guess  # predict's estimate
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import importlib  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import scattertag.beam.center as bc  # noqa: E402
from bench_beam_center import SIZES, simulated_frame  # noqa: E402
from scattertag.beam.candidates import Candidate  # noqa: E402
from scattertag.beam.choice import _choose  # noqa: E402

#: Wrapped functions (module of :mod:`scattertag.beam`, name) and the stage each one's time
#: goes to; each is replaced in every module of the package that holds it.
STAGES = {
    "pyramid.valid_counts": "pyramid",
    "pyramid.pyramid": "pyramid",
    "rings.ridges": "ridges",
    "rings.fit_arcs": "ring fit",
    "rings.arc_consensus": "consensus",
    "gradient.gradient_field": "gradient",
    "gradient.meeting_point": "gradient",
    "shadow.find_shadows": "shadows",
    "disks.shadow_circles": "shadows",
    "shadow.shadow_tips": "shadows",
    "symmetry.symmetry_map": "symmetry",
    "symmetry.symmetry_peaks": "symmetry",
    "symmetry.refine_symmetry": "symmetry",
    "symmetry.axis_start": "symmetry",
    "radial.climb": "isotropy",
    "gradient.coherence": "scoring",
    "radial.isotropy": "scoring",
    "pyramid.pixels": "scoring",
    "choice._choose": "choice",
    "grazing.grazing_candidate": "grazing",
    "fallbacks.glow_candidate": "glow",
    "fallbacks.compact_candidate": "compact",
    "polish.polish": "polish",
    "fallbacks.falloff_candidate": "falloff",
    "polish.frame_arcs": "arcs out",
}
#: The candidates' stages in the order ``candidates`` makes them.
ORDER = ("rings", "gradient", "consensus", "beamstop", "symmetry", "axis", "isotropy")


class Clock:
    """Per-stage CPU seconds of the current frame; nested wrapped calls count for the
    outermost one only. ``seen`` records the calls' first results that a replay needs."""

    def __init__(self) -> None:
        self.stage: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.depth = 0
        self.seen: dict[str, object] = {}

    def reset(self) -> None:
        """Start a new frame."""
        self.stage.clear()
        self.calls.clear()
        self.seen.clear()

    def wrap(self, name: str, fn: Callable) -> Callable:
        """``fn`` timed into stage STAGES[name]."""

        @functools.wraps(fn)
        def timed(*args, **kw):
            self.calls[name] += 1
            if self.depth:
                return fn(*args, **kw)
            # the first gradient field is the fine level's, for every candidate's coherence
            first_field = name == "gradient.gradient_field" and self.calls[name] == 1
            stage = "coherence field" if first_field else STAGES[name]
            self.depth += 1
            t0 = time.process_time()
            try:
                out = fn(*args, **kw)
            finally:
                self.stage[stage] += time.process_time() - t0
                self.depth -= 1
            if name in ("pyramid.pyramid", "choice._choose") and name not in self.seen:
                self.seen[name] = (args, out)
            return out

        return timed


def wrap_everywhere(name: str, clock: Clock) -> None:
    """Replace the function ``name`` ("module.function" of :mod:`scattertag.beam`) by its
    timed wrapper in every loaded module of the package that holds it."""
    module, attr = name.split(".")
    fn = getattr(importlib.import_module(f"scattertag.beam.{module}"), attr)
    timed = clock.wrap(name, fn)
    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").startswith("scattertag.beam"):
            for key, value in list(vars(mod).items()):
                if value is fn:
                    setattr(mod, key, timed)


def stage_of(c: Candidate) -> str:
    """The stage of ``candidates`` that made candidate ``c`` (one of ORDER)."""
    if c.method == "rings":
        return "consensus" if c.extra else "rings"
    if c.method in ("centre", "hint", "isotropy"):
        return "isotropy"
    return c.method


def key(best: Candidate | None, conf: float, position: bool) -> tuple | None:
    """What must match for the estimate to be the same: the candidate and its confidence
    (or its position only)."""
    if best is None:
        return None
    k = (best.method, best.x, best.y, best.sigma)
    return k if position else (*k, conf)


def exit_of(calls: Counter[str]) -> str:
    """Where ``candidates`` stopped by its own rules: after a tight ring fit (no shadow
    search), a strict beamstop circle (no symmetry map), point symmetry agreeing with the
    gradient lines (no isotropy search), or at the end."""
    if not calls["disks.shadow_circles"]:
        return "tight ring fit"
    if not calls["symmetry.symmetry_map"]:
        return "beamstop circle"
    if not calls["radial.climb"]:
        return "symmetry = gradient"
    return "full run"


#: Stage CPU that an exit after each candidate stage leaves out.
LATER = {
    "rings": ("gradient", "consensus", "shadows", "symmetry", "isotropy"),
    "gradient": ("consensus", "shadows", "symmetry", "isotropy"),
    "consensus": ("shadows", "symmetry", "isotropy"),
    "beamstop": ("symmetry", "isotropy"),
    "symmetry": ("isotropy",),
    "axis": ("isotropy",),
}


def ideal_exit(clock: Clock, position: bool) -> tuple[str, float]:
    """The earliest candidate stage after which the choice is already the full run's, and
    the CPU seconds of the stages left out (scoring their candidates not counted)."""
    args, (best, conf) = clock.seen["choice._choose"]
    cands, shape, ring = args
    full = key(best, conf, position)
    stages = [stage_of(c) for c in cands]
    for k, name in enumerate(ORDER[:-1]):
        n = sum(ORDER.index(s) <= k for s in stages)
        if n == len(cands):
            break  # nothing later was made: no saving
        b, c = _choose(cands[:n], shape, ring)
        if key(b, c, position) == full:
            return name, sum(clock.stage.get(s, 0.0) for s in LATER[name])
    return "none", 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--size", type=int, default=1000, help="frames of this size only (0: all)")
    ap.add_argument("--same", choices=("estimate", "position"), default="estimate")
    ap.add_argument(
        "--no-guess", action="store_true", help="predict's estimate (guess=False: no guesses)"
    )
    args = ap.parse_args()
    clock = Clock()
    for name in STAGES:
        wrap_everywhere(name, clock)
    frames = [i for i in range(args.count) if args.size in (0, SIZES[i % len(SIZES)])]
    totals, saved, stages = [], [], defaultdict(list)
    exits: Counter[str] = Counter()
    ideal: Counter[str] = Counter()
    for i in frames:
        f = simulated_frame(args.seed, i, args.cache)
        clock.reset()
        t0 = time.process_time()
        bc.estimate_beam_center(f["counts"], f["mask"], guess=not args.no_guess)
        total = time.process_time() - t0
        totals.append(total)
        clock.stage["other"] = total - sum(clock.stage.values())
        for s, t in clock.stage.items():
            stages[s].append(t)
        if "choice._choose" not in clock.seen:
            saved.append(0.0)
            exits["no candidates"] += 1
            continue
        exits[exit_of(clock.calls)] += 1
        where, cpu = ideal_exit(clock, args.same == "position")
        ideal[where] += 1
        saved.append(cpu)
    n = len(totals)
    ms = 1000.0
    load = os.getloadavg()[0]
    print(f"{n} frames (seed {args.seed}, size {args.size or 'all'}), load {load:.1f}")
    median = ms * statistics.median(totals)
    print(f"CPU a frame: median {median:.1f} ms, mean {ms * sum(totals) / n:.1f}")
    print("stage: mean CPU ms a frame, share, frames where it ran")
    for s, v in sorted(stages.items(), key=lambda kv: -sum(kv[1])):
        ran = sum(t > 0 for t in v)
        print(f"  {s:16s} {ms * sum(v) / n:6.1f}  {sum(v) / sum(totals):5.1%}  {ran}")
    print("where _candidates stops by its own rules:", dict(exits))
    print(f"ideal cascade (same {args.same}): earliest sufficient stage:", dict(ideal))
    after = [t - s for t, s in zip(totals, saved)]
    print(
        f"ideal cascade: median {ms * statistics.median(totals):.1f} -> "
        f"{ms * statistics.median(after):.1f} ms, mean {ms * sum(totals) / n:.1f} -> "
        f"{ms * sum(after) / n:.1f} ms"
    )


if __name__ == "__main__":
    main()
