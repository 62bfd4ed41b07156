"""Fine-tuning: masked loss, grouped splits and folds, exposure resampling, replay, the command."""

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

import scattertag
from conftest import BEAM, SHAPE, frame
from scattertag.adapt.command import finetune
from scattertag.adapt.evaluate_labels import ModelLoadError
from scattertag.adapt.exposure import resample_exposure
from scattertag.adapt.finetune import (
    FinetuneConfig,
    blend_weights,
    held_out_thresholds,
    known_bce,
    last_blocks,
    parameter_groups,
    reestimate_norms,
    split_groups,
)
from scattertag.adapt.folds import group_folds
from scattertag.adapt.replay import replay_from_simulator
from scattertag.errors import UserError
from scattertag.features.views import ViewSpec
from scattertag.models import load_model
from scattertag.models.card import ModelCard
from scattertag.simulate import Recipe


def test_known_bce_ignores_blank_labels():
    logits = torch.tensor([[2.0, -1.0], [0.5, 3.0]])
    labels = torch.tensor([[1.0, float("nan")], [0.0, float("nan")]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], labels[:, 0])
    assert known_bce(logits, labels).item() == pytest.approx(expected.item())
    assert known_bce(logits, torch.full((2, 2), float("nan"))).item() == 0.0


def test_thresholds_are_tuned_only_with_enough_held_out_labels():
    """A tag with few held-out positives keeps the base model's threshold; one with enough
    positives and negatives gets the F1-best cut-off (here any cut in the gap 0.3-0.7)."""
    rng = np.random.default_rng(0)
    y = np.repeat([1.0, 0.0], 12)
    probs = np.stack([np.where(y > 0, 0.7, 0.3) + rng.uniform(0, 0.05, 24)] * 2, axis=1)
    labels = np.stack([y, np.where(np.arange(24) < 3, y, np.nan)], axis=1)  # 3 known, all 1
    labels[3:12, 1] = 0.0
    labels[12:, 1] = np.nan
    mapped = np.array([0.9, 0.9])
    got = held_out_thresholds(mapped, labels, probs, min_labels=10)
    assert 0.3 < got[0] <= 0.75 and got[1] == 0.9
    assert held_out_thresholds(mapped, labels, probs, min_labels=13)[0] == 0.9


def test_split_groups_keeps_groups_whole():
    groups = ["a"] * 4 + ["b"] * 3 + ["c"] * 2 + ["d"]
    held = split_groups(groups, 0.25, seed=0)
    assert 0 < held.sum() < len(groups)
    for g in set(groups):
        sides = {bool(h) for h, name in zip(held, groups) if name == g}
        assert len(sides) == 1
    single = split_groups(["x"] * 8, 0.25, seed=0)
    assert single.sum() == 2
    with pytest.raises(UserError, match="at least 2"):
        split_groups(["x"], 0.25, 0)


def test_group_folds_balance_and_errors():
    groups = ["a"] * 4 + ["b"] * 3 + ["c"] * 2 + ["d"] * 2
    fold = group_folds(groups, 2)
    assert sorted(np.bincount(fold)) == [5, 6]
    for g in set(groups):
        assert len({f for f, name in zip(fold, groups) if name == g}) == 1
    with pytest.raises(UserError, match="--folds"):
        group_folds(groups, 5)


def test_exposure_resampling_keeps_mean_and_masked_pixels():
    rng = np.random.default_rng(0)
    counts = rng.poisson(200.0, (200, 200)).astype(np.int32)
    counts[0, :10] = -1  # module gap
    out = resample_exposure(counts, rng, thin=(0.5, 0.5), scale=(1.0, 1.0))
    assert np.all(out[0, :10] == -1)
    valid = counts >= 0
    assert out[valid].mean() == pytest.approx(counts[valid].mean(), rel=0.01)
    # thinning to half the exposure then rescaling doubles the relative variance
    assert out[valid].var() == pytest.approx(2 * counts[valid].var(), rel=0.1)


def test_parameter_groups_by_update(model_dir):
    model, _ = load_model(model_dir)
    head = {id(p) for p in model.head.parameters()}
    parameter_groups(model, FinetuneConfig(update="head"))
    assert {id(p) for p in model.parameters() if p.requires_grad} == head
    parameter_groups(model, FinetuneConfig(update="last"))
    last = {id(p) for b in last_blocks(model) for p in b.parameters()}
    assert {id(p) for p in model.parameters() if p.requires_grad} == head | last
    assert len(last_blocks(model)) == 2
    parameter_groups(model, FinetuneConfig(update="all"))
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(UserError, match="update"):
        FinetuneConfig(update="everything")


def empty(seed):
    """A frame without any ring: flat Poisson background."""
    return np.random.default_rng(seed).poisson(20.0, SHAPE).astype(np.int32)


def write_ring_set(folder, count=12):
    """``count`` frames, half with a ring (Ring=1), in groups of two; Halo left blank."""
    lines = ["path\tbeam_x\tbeam_y\tgroup\tRing\tHalo"]
    for k in range(count):
        ring = k % 2 == 0
        np.save(folder / f"f{k}.npy", frame(seed=k) if ring else empty(k))
        lines.append(f"f{k}.npy\t{BEAM[0]}\t{BEAM[1]}\tg{k // 2}\t{int(ring)}\t")
    (folder / "labels.tsv").write_text("\n".join(lines) + "\n")
    return folder / "labels.tsv"


FAST = FinetuneConfig(update="all", max_epochs=6, patience=6, lr=3e-3, exposure_copies=1)


def test_finetune_writes_a_usable_model(tmp_path, model_dir):
    labels = write_ring_set(tmp_path)
    out = tmp_path / "tuned"
    report = finetune(labels, out, model_dir, config=FAST, replay="none", folds=2)
    card = ModelCard.read(out)
    recipe = card.training["finetune"]
    assert recipe["labels_sha256"] == hashlib.sha256(labels.read_bytes()).hexdigest()
    assert recipe["base_model"] == str(model_dir) and len(recipe["base_model_sha256"]) == 64
    assert recipe["update"] == "all" and recipe["frames"] + recipe["held_out_frames"] == 12
    assert card.calibration["method"] == "temperature"
    assert len(card.thresholds) == len(card.vocabulary)
    cv = report["cross_validation"]
    assert cv["folds"] == 2 and cv["frames"] == 12
    assert [r["tag"] for r in cv["per_tag"]] == ["Ring"]  # Halo is blank everywhere
    assert json.loads((out / "finetune.json").read_text())["frames"] == 12
    table = scattertag.predict([str(tmp_path / "f0.npy")], beam_center=BEAM, model=out)
    assert not table.failed


def test_finetune_bad_input(tmp_path, model_dir):
    labels = write_ring_set(tmp_path, 4)
    with pytest.raises(ModelLoadError, match="does not load"):
        finetune(labels, tmp_path / "o", tmp_path, config=FAST, replay="none")
    with pytest.raises(UserError, match="recipe"):
        finetune(labels, tmp_path / "o", model_dir, config=FAST, replay="simulate")


def test_replay_from_simulator_aligns_labels(model_dir):
    card = ModelCard.read(model_dir)
    card = replace(card, training={"dataset": {"recipe": Recipe(size=48).to_dict()}})
    items = replay_from_simulator(card, 3, seed=0, per_experiment=2)
    assert len(items) == 3 and items.labels.shape == (3, len(card.vocabulary))
    assert not torch.isnan(items.labels).any()


def test_replay_draws_every_training_recipe_in_proportion(model_dir):
    """A card of ``train --data A B`` replays both recipes (by their frame counts); tags a
    recipe does not label are unknown (NaN: no loss) in its frames."""
    card = ModelCard.read(model_dir)
    few = list(card.vocabulary[:5])
    sources = [
        {"recipe": Recipe(size=48).to_dict(), "experiments": 3, "images_per_experiment": 2},
        {"recipe": Recipe(size=48, vocabulary=few).to_dict(), "experiments": 1},
    ]
    card = replace(card, training={"dataset": sources[0], "more_data": sources[1:]})
    labels = replay_from_simulator(card, 8, seed=0, per_experiment=2).labels
    assert labels.shape == (8, len(card.vocabulary))
    known = ~torch.isnan(labels)
    assert known[:6].all()  # shares 6/7 and 1/7 of four experiments: three of the first
    assert known[6:, :5].all() and not known[6:, 5:].any()


def test_reestimate_norms_averages_batch_moments(model_dir):
    """The input batch norm's running mean becomes the mean of the frames it was shown;
    weights and the layers' momentum are unchanged."""
    model, card = load_model(model_dir)
    spec = ViewSpec.from_dict(card.view_spec)
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k}
    g = torch.Generator().manual_seed(0)
    image = 3.0 + torch.randn((8, *spec.image_shape), generator=g)
    coeff = torch.randn((8, *spec.coeff_shape), generator=g)
    reestimate_norms(model, [(image[:4], coeff[:4]), (image[4:], coeff[4:])])
    norm = model.image_trunk.norm
    assert torch.allclose(norm.running_mean, image.mean(dim=(0, 2, 3)), atol=1e-5)
    assert norm.momentum == 0.1 and not model.training
    for k, v in model.state_dict().items():
        if k in weights and v.is_floating_point():
            assert torch.equal(v, weights[k]), k


def test_blend_weights_interpolates_floating_tensors(model_dir):
    base, _ = load_model(model_dir)
    tuned, _ = load_model(model_dir)
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(1.0)
    steps = {k: v.clone() for k, v in tuned.state_dict().items() if not v.is_floating_point()}
    blend_weights(base, tuned, 0.25)
    for (name, a), b in zip(base.state_dict().items(), tuned.state_dict().values(), strict=True):
        if name in steps:
            assert torch.equal(b, steps[name])
        elif any(name == n for n, _ in base.named_parameters()):
            assert torch.allclose(b, a + 0.25), name
    with pytest.raises(UserError, match="blend"):
        FinetuneConfig(blend=1.5)
    with pytest.raises(UserError, match="norm"):
        FinetuneConfig(norm="batch")
