"""Build memory and throughput: peak RSS of the process tree and images/s vs the ideal.

    python benchmarks/bench_build.py   # 2000 x 2000, 2 workers, 200 then 400 images
    python benchmarks/bench_build.py --size 512 --counts 40 80

Ideal throughput = workers / (simulation + Fourier-Bessel CPU time per image), measured
serially in this process on the first experiment's images (single-threaded, like the
workers, set-up included). The build then runs for each count with the same workers
while a thread samples the resident memory of the whole process tree (this process +
workers) every 50 ms.
Goals: peak RSS < 3 GB at 2000 x 2000 with 2 workers, and not growing with the count;
build time within 1.3 x the ideal. On a shared machine wall time depends on the others'
load, so the table also gives the workers' own CPU time per image (vs serial: the extra
work of the parallel build) and wall / (worker CPU / workers) (idle + contention).
"""

from __future__ import annotations

import contextlib
import os

from scattertag.parallel import THREAD_VARIABLES

# the serial reference runs single-threaded, like a worker
os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))

import argparse
import tempfile
import threading
import time
from pathlib import Path

import psutil

from scattertag.data.build import build_dataset, default_pipeline


class TreeMemory:
    """Peak summed RSS (bytes) of this process and all its descendants, sampled by a thread."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a process that just exited
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def serial_cpu_per_image(recipe, spec, images: int, per_experiment: int) -> float:
    """Simulation + views CPU seconds per image, serially; one experiment's set-up for its images.

    CPU time (this process is single-threaded, like a worker) rather than wall time, so that
    other users of a shared machine do not inflate the reference.
    """
    pipe = default_pipeline()
    warm = pipe.draw_experiment(
        recipe, 0, 1
    )  # untimed: one-time imports and caches of a fresh process
    pipe.view_maker(spec, warm.geometry, warm.mask)(pipe.simulate_image(warm, 0).counts, None)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    exp = pipe.draw_experiment(recipe, 0, 0)
    maker = pipe.view_maker(spec, exp.geometry, exp.mask)
    for i in range(images):
        s = pipe.simulate_image(exp, i)
        maker(s.counts, s.mask)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(
        f"serial: {images} images of experiment 0 (its set-up included, shared by {per_experiment} "
        "images in the builds): "
        f"{cpu / images:.3f} CPU s/image, {wall / images:.3f} wall s/image"
    )
    return cpu / images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--counts", type=int, nargs="+", default=[200, 400], help="images per build"
    )
    parser.add_argument("--per-experiment", type=int, default=20, help="images per experiment")
    parser.add_argument("--serial", type=int, default=20, help="images timed serially")
    parser.add_argument("--keep-raw", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--input-size", type=int, default=256)
    args = parser.parse_args()

    from scattertag.features.views import ViewSpec
    from scattertag.simulate import Recipe

    recipe, spec = Recipe(size=args.size), ViewSpec(input_size=args.input_size)
    print(
        f"{args.size} x {args.size}, {args.workers} workers, keep_raw={args.keep_raw}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start"
    )
    serial = serial_cpu_per_image(recipe, spec, args.serial, args.per_experiment)
    ideal = args.workers / serial
    rows = []
    for count in args.counts:
        with tempfile.TemporaryDirectory(prefix="bench_build_") as out, TreeMemory() as memory:
            cpu0, t0 = psutil.Process().cpu_times(), time.perf_counter()
            build_dataset(
                Path(out),
                recipe,
                spec,
                seed=0,
                experiments=count // args.per_experiment,
                images_per_experiment=args.per_experiment,
                keep_raw=args.keep_raw,
                workers=args.workers,
                progress=False,
            )
            wall = time.perf_counter() - t0
            cpu1 = psutil.Process().cpu_times()
            size = sum(p.stat().st_size for p in Path(out).glob("batch_*.h5"))
        writer = cpu1.user + cpu1.system - cpu0.user - cpu0.system
        # workers have exited (and been reaped) when the build returns:
        # their CPU time is the children's
        workers = (
            cpu1.children_user + cpu1.children_system - cpu0.children_user - cpu0.children_system
        )
        images = count // args.per_experiment * args.per_experiment
        rows.append(
            (
                images,
                wall,
                images / wall,
                memory.peak / 1e9,
                writer / wall,
                workers / images,
                size / images / 1e6,
                os.getloadavg()[0],
            )
        )
    print(
        f"ideal: {ideal:.3f} images/s = {args.workers} workers / serial CPU s per image (an "
        "unloaded machine)"
    )
    print(
        f"{'images':>7} {'wall s':>7} {'img/s':>6} {'ideal/actual':>12} {'peak RSS GB':>11} "
        f"{'writer CPU':>10} {'worker CPU s/img':>16} {'vs serial':>9} {'wall/(CPU/workers)':>18} "
        f"{'MB/img':>6}  load"
    )
    for images, wall, rate, peak, busy, per_image, mb, load in rows:
        print(
            f"{images:>7d} {wall:>7.1f} {rate:>6.3f} {ideal / rate:>12.2f} {peak:>11.2f} "
            f"{busy:>10.0%} {per_image:>16.3f} {per_image / serial:>9.2f} "
            f"{wall / (per_image * images / args.workers):>18.2f} {mb:>6.2f}  {load:.2f}"
        )


if __name__ == "__main__":
    main()
