"""``scattertag preview``: a montage of simulated images with their tags as captions.

``--tally N`` also prints how often each tag occurs over N images (experiments of
``--per-experiment`` images), the check that every tag is common enough to learn.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from scattertag.plotting import caption, draw_frame, montage_axes, save
from scattertag.simulate.experiment import draw_experiment
from scattertag.simulate.image import simulate_image
from scattertag.simulate.recipe import Recipe


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of the preview subcommand."""
    parser.add_argument(
        "--size", type=int, default=1000, help="frame side in pixels (default 1000)"
    )
    parser.add_argument("--count", type=int, default=12, help="number of images (default 12)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--per-experiment",
        type=int,
        default=1,
        help="images per experiment (default 1: every panel a new experiment)",
    )
    parser.add_argument(
        "--gisaxs", type=float, default=0.0, help="fraction of grazing-incidence experiments"
    )
    parser.add_argument("--columns", type=int, default=4, help="panels per row (default 4)")
    parser.add_argument(
        "--out", type=Path, default=Path("preview.png"), help="output PNG (default preview.png)"
    )
    parser.add_argument(
        "--tally",
        type=int,
        default=0,
        metavar="N",
        help="also print the tag frequencies of N images (default 0: none)",
    )


def tally(recipe: Recipe, seed: int, count: int, per_experiment: int) -> dict[str, float]:
    """Fraction of ``count`` images carrying each tag (vocabulary order)."""
    seen: Counter = Counter()
    for i in tqdm(range(count), desc="tally", unit="image"):
        e, j = divmod(i, per_experiment)
        if j == 0:
            experiment = draw_experiment(recipe, seed, e)
        seen.update(simulate_image(experiment, j).tags)
    return {tag: seen[tag] / count for tag in recipe.vocabulary}


def run(args: argparse.Namespace) -> int:
    """Simulate ``count`` images and draw them, beam centre marked, tags as captions."""
    if args.count < 1 or args.per_experiment < 1 or args.tally < 0:
        raise SystemExit(
            "preview: --count and --per-experiment must be at least 1, --tally at least 0"
        )
    recipe = Recipe(size=args.size, gisaxs_fraction=args.gisaxs)
    fig, axes = montage_axes(args.count, columns=args.columns)
    experiment = None
    for i, ax in enumerate(axes):
        e, j = divmod(i, args.per_experiment)
        if experiment is None or experiment.index != e:
            experiment = draw_experiment(recipe, args.seed, e)
        s = simulate_image(experiment, j)
        title = f"exp {e} img {j} ({s.params['kind']})\n" + caption(s.tags)
        draw_frame(ax, s.counts, s.mask, s.geometry.beam_center, title=title)
    path = save(fig, args.out)
    print(f"wrote {path}")
    if args.tally:
        print(
            f"tag frequencies over {args.tally} images ({args.per_experiment} per experiment), size {args.size}, seed {args.seed}:"
        )
        for tag, fraction in tally(recipe, args.seed, args.tally, args.per_experiment).items():
            print(f"  {tag:20s} {fraction:6.3f}")
    return 0
