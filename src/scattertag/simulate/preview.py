"""A montage of simulated images with their tags as captions (``scattertag preview``).

``tally`` counts how often each tag occurs over N images (experiments of
``per_experiment`` images), the check that every tag is common enough to learn.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from scattertag.errors import UserError
from scattertag.plotting import caption, draw_frame, montage_axes, save
from scattertag.simulate.experiment import Experiment, draw_experiment
from scattertag.simulate.image import simulate_image
from scattertag.simulate.recipe import Recipe


@dataclass(frozen=True)
class PreviewConfig:
    """``count`` simulated frames of ``size`` pixels, ``per_experiment`` per experiment.

    ``gisaxs`` is the fraction of grazing-incidence experiments; ``tally`` > 0 also counts
    the tags of that many images.
    """

    out: Path = Path("preview.png")
    size: int = 1000
    count: int = 12
    seed: int = 0
    per_experiment: int = 1
    gisaxs: float = 0.0
    columns: int = 4
    tally: int = 0

    def __post_init__(self) -> None:
        """UserError for counts out of range."""
        if self.count < 1 or self.per_experiment < 1 or self.tally < 0:
            raise UserError("--count and --per-experiment must be at least 1, --tally at least 0")

    @property
    def recipe(self) -> Recipe:
        """The simulator recipe of the previewed frames."""
        return Recipe(size=self.size, gisaxs_fraction=self.gisaxs)


@dataclass(frozen=True)
class PreviewResult:
    """The montage PNG and, if asked for, each tag's fraction of the tallied images."""

    montage: Path
    tag_fractions: dict[str, float] | None


def tally(recipe: Recipe, seed: int, count: int, per_experiment: int) -> dict[str, float]:
    """Fraction of ``count`` images carrying each tag (vocabulary order)."""
    seen: Counter = Counter()
    experiment: Experiment | None = None
    for i in tqdm(range(count), desc="tally", unit="image"):
        e, j = divmod(i, per_experiment)
        if experiment is None or j == 0:
            experiment = draw_experiment(recipe, seed, e)
        seen.update(simulate_image(experiment, j).tags)
    return {tag: seen[tag] / count for tag in recipe.vocabulary or ()}


def preview(config: PreviewConfig) -> PreviewResult:
    """Simulate ``config.count`` images and draw them, beam centre marked, tags as captions."""
    recipe = config.recipe
    fig, axes = montage_axes(config.count, columns=config.columns)
    experiment = None
    for i, ax in enumerate(axes):
        e, j = divmod(i, config.per_experiment)
        if experiment is None or experiment.index != e:
            experiment = draw_experiment(recipe, config.seed, e)
        s = simulate_image(experiment, j)
        title = f"exp {e} img {j} ({s.params['kind']})\n" + caption(s.tags)
        draw_frame(ax, s.counts, s.mask, s.geometry.beam_center, title=title)
    path = save(fig, config.out)
    fractions = (
        tally(recipe, config.seed, config.tally, config.per_experiment) if config.tally else None
    )
    return PreviewResult(path, fractions)
