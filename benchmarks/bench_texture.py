"""Cost of the cake's sub-cell texture channel (ViewSpec.cake_texture), side by side.

For each frame side in ``--sizes`` (default 1000): a Poisson frame of a grainy ring on a
background, beam centre off the middle, timed ``--repeats`` times in turn (one process,
one thread) with the shipped cake (4 channels) and with the texture channel (``--subcells``
sub-cells): median CPU ms per frame of the image view alone and of both views (image and
Fourier-Bessel coefficients), and their ratios; then the set-up per geometry of each.

    python benchmarks/bench_texture.py
    python benchmarks/bench_texture.py --sizes 1000 2000 --repeats 30
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from functools import partial  # noqa: E402

import numpy as np  # noqa: E402


def grainy_ring(side: int, seed: int = 0) -> tuple[np.ndarray, tuple[float, float]]:
    """(side, side) uint32 Poisson counts of a ring of 300 grains (0.5 degrees) at a third of
    the side from a beam centre off the middle, on a background of 5 counts; the centre."""
    rng = np.random.default_rng(seed)
    centre = (0.43 * side, 0.58 * side)
    y, x = np.indices((side, side), dtype=np.float64)
    r, chi = np.hypot(x - centre[0], y - centre[1]), np.arctan2(y - centre[1], x - centre[0])
    grid = np.linspace(-np.pi, np.pi, 4096, endpoint=False)
    offset = (grid[:, None] - rng.uniform(-np.pi, np.pi, 300) + np.pi) % (2 * np.pi) - np.pi
    profile = np.exp(-0.5 * (offset / np.radians(0.5)) ** 2).sum(axis=1)
    angular = np.interp(chi, grid, profile / profile.mean(), period=2 * np.pi)
    lam = 5.0 + 1e3 * angular * np.exp(-0.5 * ((r - side / 3) / 2.0) ** 2)
    return rng.poisson(lam).astype(np.uint32), centre


def cpu_ms(call, repeats: int) -> list[float]:
    """CPU milliseconds of each of ``repeats`` calls."""
    out = []
    for _ in range(repeats):
        start = time.process_time()
        call()
        out.append(1e3 * (time.process_time() - start))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--subcells", type=int, default=4)
    args = parser.parse_args()

    from scattertag.features.views import ViewMaker, ViewSpec
    from scattertag.geometry import Geometry

    shipped = ViewSpec(input_size=128, zeros=64)  # the shipped tagger's views
    texture = dataclasses.replace(shipped, cake_texture=args.subcells)
    print(f"cake {shipped.image_shape} vs cake with texture {texture.image_shape}; one thread")
    for side in args.sizes:
        counts, centre = grainy_ring(side)
        geometry = Geometry((side, side), centre)
        setup: dict[str, list[float]] = {"shipped": [], "texture": []}
        makers = {}
        for name, spec in (("shipped", shipped), ("texture", texture)):
            start = time.process_time()
            makers[name] = ViewMaker(spec, geometry)
            setup[name].append(1e3 * (time.process_time() - start))
        times: dict[str, list[float]] = {}
        for _ in range(args.repeats):  # in turn, so load changes hit both alike
            for name, maker in makers.items():
                image, views = partial(maker.image, counts), partial(maker, counts)
                times.setdefault(f"{name} image", []).extend(cpu_ms(image, 1))
                times.setdefault(f"{name} views", []).extend(cpu_ms(views, 1))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{side} x {side}, median of {args.repeats}:")
        for part in ("image", "views"):
            a, b = med[f"shipped {part}"], med[f"texture {part}"]
            print(
                f"  {part:5s}: shipped {a:7.1f} ms  with texture {b:7.1f} ms  "
                f"ratio {b / a:.2f}  (+{b - a:.1f} ms)"
            )
        a, b = setup["shipped"][0], setup["texture"][0]
        print(f"  set-up: shipped {a:7.0f} ms  with texture {b:7.0f} ms  ratio {b / a:.2f}")


if __name__ == "__main__":
    main()
