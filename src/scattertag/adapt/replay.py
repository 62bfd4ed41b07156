"""Replay frames: synthetic frames with all tags known, mixed into fine-tuning.

A few labelled real frames say nothing about most tags; training on them alone would let
the network forget those tags. Each fine-tuning step therefore also sees a batch of
simulated frames with complete labels, either read from a built dataset (its training
shards, never the test shard) or simulated now with the recipe the model was trained on.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from scattertag.adapt.frames import TensorItems
from scattertag.errors import UserError
from scattertag.models.card import ModelCard


def _aligned(labels: np.ndarray, names: list[str], vocabulary: list[str]) -> np.ndarray:
    """(n, len(vocabulary)) labels of columns ``names``; NaN for tags the source lacks."""
    out = np.full((len(labels), len(vocabulary)), np.nan)
    for j, name in enumerate(names):
        if name in vocabulary:
            out[:, vocabulary.index(name)] = labels[:, j]
    return out


def replay_from_dataset(data, card: ModelCard, count: int, seed: int = 0) -> TensorItems:
    """``count`` random frames of the training shards of the built dataset ``data``."""
    from scattertag.data import ShardDataset, fold_shards
    from scattertag.models.io import check_compatible

    dataset = ShardDataset(data, fold_shards(int(card.training.get("test_shard", 9)))[0])
    try:
        check_compatible(card, dataset.manifest, "the base model", str(data))
    except ValueError as exc:
        raise UserError(f"--replay {data}: {exc}") from None
    rows = np.random.default_rng(seed).permutation(len(dataset))[:count]
    items = [dataset[int(i)] for i in rows]
    labels = np.stack([item["labels"].numpy() for item in items])
    return TensorItems(
        np.stack([item["image"].numpy() for item in items]),
        np.stack([item["coeff"].numpy() for item in items]),
        _aligned(labels, dataset.vocabulary, list(card.vocabulary)),
    )


def replay_from_simulator(
    card: ModelCard, count: int, seed: int = 0, per_experiment: int = 8, progress: bool = False
) -> TensorItems:
    """``count`` frames simulated now with the recipes of the model's training datasets.

    A model trained on several datasets (``train --data A B``) replays each recipe in
    proportion to its dataset's frames, in contiguous blocks of experiments.
    """
    from scattertag.data.build import Task, default_pipeline, run_task
    from scattertag.features.views import ViewSpec
    from scattertag.simulate import Recipe

    sources = [card.training.get("dataset", {}), *card.training.get("more_data", [])]
    if not all(source.get("recipe") for source in sources):
        raise UserError(
            "the base model's card has no simulator recipe (training.dataset.recipe): "
            "give --replay DATASET instead"
        )
    recipes = [Recipe.from_dict(source["recipe"]) for source in sources]
    frames = [
        source.get("experiments", 1) * source.get("images_per_experiment", 1) for source in sources
    ]
    bounds = np.cumsum(frames) / sum(frames)
    spec = ViewSpec.from_dict(card.view_spec)
    records, labels = [], []
    experiments = -(-count // per_experiment)
    for e in tqdm(range(experiments), desc="replay", disable=not progress):
        recipe = recipes[int(np.searchsorted(bounds, (e + 0.5) / experiments))]
        stop = min(per_experiment, count - e * per_experiment)
        task = Task(recipe, spec, 10_000 + seed, e, 0, stop, False, default_pipeline())
        drawn = run_task(task)
        records.extend(drawn)
        labels.append(
            _aligned(
                np.stack([r.labels for r in drawn]).astype(np.float64),
                list(recipe.vocabulary or ()),
                list(card.vocabulary),
            )
        )
    return TensorItems(
        np.stack([r.image for r in records]),
        np.stack([r.coeff for r in records]),
        np.concatenate(labels),
    )
