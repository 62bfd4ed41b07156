"""Time simulate_image against numpy's Poisson draw on a frame of the same size.

The floor of any noisy simulator is drawing the Poisson counts: for each image we time
``simulate_image`` and, side by side, ``rng.poisson`` on a float64 array of the same shape
holding that image's counts (the same intensities), and report the median ratio.
Per-experiment maps are built before timing (they are reused by every image of an
experiment). Goal: median ratio <= 4 at 1000 x 1000 and <= 5 at 2000 x 2000, one core.
``--recipes`` times the first version's simulator (``legacy``: ``Recipe.legacy``) and the
default catalogue mix (``catalogue``) in the same run.

    python benchmarks/bench_simulate.py --sizes 1000 2000 --experiments 4 --images 5
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core

import numpy as np

from scattertag.simulate import Recipe, draw_experiment, simulate_image

RECIPES = {"legacy": Recipe.legacy, "catalogue": lambda size: Recipe(size=size)}


def bench(
    recipe: Recipe, experiments: int, images: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seconds per image of simulate_image and of rng.poisson, (experiments * images,) each."""
    rng = np.random.default_rng(seed)
    sim, poisson = [], []
    for e in range(experiments):
        exp = draw_experiment(
            recipe, seed, e
        ).prepare()  # per-experiment maps, built once (untimed)
        for i in range(images):
            t0 = time.perf_counter()
            s = simulate_image(exp, i)
            t1 = time.perf_counter()
            lam = s.counts.astype(np.float64)
            t2 = time.perf_counter()
            rng.poisson(lam)
            t3 = time.perf_counter()
            sim.append(t1 - t0)
            poisson.append(t3 - t2)
    return np.array(sim), np.array(poisson)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--experiments", type=int, default=4)
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    args = parser.parse_args()
    print(
        f"{'recipe':>10} {'size':>6} {'simulate ms':>12} {'poisson ms':>11} "
        f"{'median ratio':>13} {'max ratio':>10}"
    )
    for size in args.sizes:
        for name in args.recipes:
            sim, poisson = bench(RECIPES[name](size), args.experiments, args.images, args.seed)
            ratio = sim / poisson
            print(
                f"{name:>10} {size:>6} {np.median(sim) * 1e3:>12.1f} "
                f"{np.median(poisson) * 1e3:>11.1f} {np.median(ratio):>13.2f} {ratio.max():>10.2f}"
            )


if __name__ == "__main__":
    main()
