"""Training: learning on a small learnable dataset, validation split, resume, joint start, DDP.

The dataset is built by the real builder (``scattertag.data.build_dataset``) with a small
fake simulator: four tags are drawn into the image (a ring, a central blob, a 4-fold
anisotropic ring, a raised background: all unchanged by the frame symmetries), the
other thirteen are coin flips that no network can learn. The coefficient view holds the
angular Fourier moments of the image about the frame centre, which transform under the
frame symmetries exactly as Fourier-Bessel coefficients do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import LEARNABLE, make_dataset, train
from scattertag.errors import UserError
from scattertag.evaluate import per_tag_ap, predict_scores
from scattertag.models import ModelCard, load_model


def test_scores(model_dir, data):
    """(labels, scores) of a trained run on the test shard."""
    from scattertag.data import ShardDataset

    model, _ = load_model(model_dir)
    return predict_scores(model, ShardDataset(data, [9]))


test_scores.__test__ = False  # a helper, not a test


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A fake dataset and trained image, coefficient and joint runs."""
    root = tmp_path_factory.mktemp("train")
    data = root / "data"
    make_dataset(data)
    torch.manual_seed(0)
    train(data, root / "image", "image")
    train(data, root / "coeff", "coeff")
    train(
        data,
        root / "joint",
        "joint",
        epochs=2,
        init_image=root / "image",
        init_coeff=root / "coeff",
    )
    return root


@pytest.mark.parametrize("view", ["image", "coeff", "joint"])
def test_views_learn_the_drawn_tags_only(runs, view):
    labels, scores = test_scores(runs / view, runs / "data")
    ap = per_tag_ap(labels, scores)
    assert ap[:LEARNABLE].min() > 0.9, ap  # drawn into the image: learnt
    chance = labels[:, LEARNABLE:].mean(0)  # AP of a random ranking ~ prevalence
    assert abs(np.nanmean(ap[LEARNABLE:]) - chance.mean()) < 0.25, ap


def test_run_directory_and_card(runs):
    card = ModelCard.read(runs / "image")
    lines = [json.loads(s) for s in (runs / "image" / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in lines] == list(range(1, 9))
    best = max(lines, key=lambda e: e["val_mAP"])
    assert card.metrics == {"val_mAP": best["val_mAP"], "epoch": best["epoch"]}
    training = card.training
    # the validation split is made of whole experiments of the training shards, none of shard 9
    assert training["val_experiments"] and all(e % 10 != 9 for e in training["val_experiments"])
    assert training["train_images"] + training["val_images"] == 9 * 2 * 12
    assert training["val_images"] == 12 * len(training["val_experiments"])
    assert len(card.thresholds) == 17 and card.view == "image" and card.backbone == "alexnet"


def test_joint_starts_as_the_mean_of_the_views(runs):
    from scattertag.data import ShardDataset
    from scattertag.models import joint_from_views

    image, _ = load_model(runs / "image")
    coeff, _ = load_model(runs / "coeff")
    joint = joint_from_views(image, coeff).eval()
    batch = next(iter(torch.utils.data.DataLoader(ShardDataset(runs / "data", [9]), batch_size=8)))
    x, a = batch["image"], batch["coeff"]
    alpha = torch.linspace(0, 1, 17)  # a different blend for every tag
    blended = joint_from_views(image, coeff, alpha.tolist()).eval()
    with torch.no_grad():
        torch.testing.assert_close(
            joint(x, a), 0.5 * (image(x, a) + coeff(x, a)), rtol=1e-5, atol=1e-5
        )
        torch.testing.assert_close(
            blended(x, a), alpha * image(x, a) + (1 - alpha) * coeff(x, a), rtol=1e-5, atol=1e-5
        )
    with pytest.raises(ValueError, match="image_weight"):
        joint_from_views(image, coeff, 1.5)


def test_joint_fusion_weights_come_from_validation(runs):
    """The joint card records the per-tag alphas it started from, each from the grid."""
    from scattertag.train import FUSION_GRID

    fusion = ModelCard.read(runs / "joint").training["fusion_init"]
    assert len(fusion) == 17 and set(fusion) <= set(FUSION_GRID)
    # the blended start is scored as epoch 0 and competes with the fine-tuned epochs
    epochs = [
        json.loads(s)["epoch"] for s in (runs / "joint" / "metrics.jsonl").read_text().splitlines()
    ]
    assert epochs == [0, 1, 2]


def test_resume_after_interruption(runs, tmp_path, monkeypatch):
    import scattertag.train

    out, calls = tmp_path / "run", []
    steps_per_epoch = 192 // 16  # 16 training experiments x 12 images, batch 16

    def killed_in_epoch_two(image, coeff, size, generator, cake=False):
        calls.append(1)
        if len(calls) > steps_per_epoch + 3:
            raise KeyboardInterrupt
        return image, coeff

    monkeypatch.setattr(scattertag.train, "augment", killed_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(runs / "data", out, "coeff", epochs=3)
    monkeypatch.undo()
    with pytest.raises(UserError, match="--resume"):
        train(runs / "data", out, "coeff", epochs=3)
    train(runs / "data", out, "coeff", epochs=3, resume=True)
    epochs = [json.loads(s)["epoch"] for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    with pytest.raises(ValueError, match="cannot resume.*batch_size"):
        train(runs / "data", out, "coeff", epochs=3, resume=True, batch_size=8)
    (out / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="last.pt is corrupt"):
        train(runs / "data", out, "coeff", epochs=3, resume=True)


def test_joint_needs_both_inits_of_the_right_views(runs, tmp_path):
    with pytest.raises(ValueError, match="--init-image RUN and --init-coeff RUN"):
        train(runs / "data", tmp_path / "j", "joint", epochs=1)
    with pytest.raises(ValueError, match="holds a 'coeff' model, expected 'image'"):
        train(
            runs / "data",
            tmp_path / "j",
            "joint",
            epochs=1,
            init_image=runs / "coeff",
            init_coeff=runs / "coeff",
        )


def test_init_model_goes_on_training_a_saved_tagger(runs, tmp_path):
    """--init-model starts from the saved weights (a vanishing learning rate keeps them) and
    the card names it; a model of another view or mixed with --init-image is refused."""
    card = train(
        runs / "data", tmp_path / "go_on", "joint", epochs=1, lr=1e-12, init_model=runs / "joint"
    )
    assert card.training["init"] == [str(runs / "joint")]
    (before, _), (after, _) = load_model(runs / "joint"), load_model(tmp_path / "go_on")
    for (name, p), (_, q) in zip(before.named_parameters(), after.named_parameters()):
        assert torch.allclose(p, q, atol=1e-6), name
    with pytest.raises(ValueError, match="holds a 'coeff' model, expected 'joint'"):
        train(runs / "data", tmp_path / "j", "joint", epochs=1, init_model=runs / "coeff")
    with pytest.raises(ValueError, match="--init-model starts from one saved tagger"):
        train(
            runs / "data",
            tmp_path / "j",
            "joint",
            epochs=1,
            init_model=runs / "joint",
            init_image=runs / "image",
        )


def test_several_datasets_train_together(runs, tmp_path):
    """--data A B: the training items of both (their own test shards out), validation
    experiments from both, class weights over both, both named in the card; datasets
    with other views are refused by name before anything is read."""
    from scattertag.data import ShardDataset
    from scattertag.data.dataset import EXPERIMENT_STRIDE

    more = tmp_path / "more"
    make_dataset(more, experiments=10, images_per_experiment=6, seed=2)
    card = train(runs / "data", tmp_path / "both", "coeff", epochs=1, more_data=(more,))
    sizes = [len(ShardDataset(root, list(range(9)))) for root in (runs / "data", more)]
    training = card.training
    assert training["train_images"] + training["val_images"] == sum(sizes)
    assert [d["data"] for d in training["more_data"]] == [str(more)]
    assert training["more_data"][0]["seed"] == 2 and training["dataset"]["seed"] == 1
    one = train(runs / "data", tmp_path / "one", "coeff", epochs=1)
    assert one.training["train_images"] + one.training["val_images"] == sizes[0]
    # each dataset is split on its own: the first keeps the validation experiments of a run
    # on it alone (a model trained there and trained on here never validates on its own
    # training frames), the second gives some too
    keys = np.array(training["val_experiments"])
    assert keys[keys < EXPERIMENT_STRIDE].tolist() == one.training["val_experiments"]
    assert (keys >= EXPERIMENT_STRIDE).any()
    assert "more_data" not in one.training

    other = tmp_path / "other"
    other.mkdir()
    manifest = json.loads((more / "manifest.json").read_text())
    manifest["coeff_shape"] = [manifest["coeff_shape"][0], 99, 99]
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=f"coeff_shape mismatch: dataset .* but {other} has"):
        train(runs / "data", tmp_path / "x", "coeff", epochs=1, more_data=(other,))


@pytest.mark.slow
def test_torchrun_two_processes(runs, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "scattertag.train",
        "--data",
        str(runs / "data"),
        "--view",
        "coeff",
        "--out",
        str(out),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--threads",
        "1",
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ModelCard.read(out).training["processes"] == 2
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # one writer: rank 0


def test_training_items_respect_the_memory_budget():
    """Below the budget the items are held in memory; above it they stay lazy (bounded memory)."""
    from torch.utils.data import Subset

    from scattertag.train import InMemory, item_bytes, training_items

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return {
                "image": torch.full((1, 8, 8), float(i)),
                "coeff": torch.zeros(3, 2, 4),
                "labels": torch.zeros(5),
            }

    per_item = item_bytes([1, 8, 8], [3, 2, 4], 5, keep_image=True)
    assert per_item == 4 * (64 + 24 + 5)
    held = training_items(Items(), list(range(10)), per_item, 0, 10 * per_item / 1e6, desc="t")
    lazy = training_items(Items(), list(range(10)), per_item, 0, 9 * per_item / 1e6, desc="t")
    assert isinstance(held, InMemory) and isinstance(lazy, Subset)
    assert torch.equal(held[3]["image"], lazy[3]["image"])


def test_joint_trunks_can_learn_slower_than_the_head():
    """--trunk-lr-scale: the head keeps the peak rate, every other weight gets the scaled one."""
    from scattertag.models import JointTagger
    from scattertag.train import parameter_groups

    model = JointTagger(5, (3, 4, 6), backbone="alexnet", width=4, coeff_width=4)
    head, trunks = parameter_groups(model, 1e-3, 0.1)
    assert head["lr"] == 1e-3 and trunks["lr"] == pytest.approx(1e-4)
    assert {id(p) for p in head["params"]} == {id(p) for p in model.head.parameters()}
    assert len(head["params"]) + len(trunks["params"]) == len(list(model.parameters()))
    (single,) = parameter_groups(model, 1e-3, 1.0)
    assert len(single["params"]) == len(list(model.parameters()))
