"""Taggers: every view takes both inputs, any input size; I/O round trip and bad checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from scattertag.data.manifest import DatasetManifest
from scattertag.errors import UserError
from scattertag.models import (
    BACKBONES,
    CoeffTagger,
    ImageTagger,
    JointTagger,
    ModelCard,
    check_compatible,
    load_model,
    save_model,
)

COEFF = (3, 16, 32)  # the default ViewSpec's (C, N+1, K)


def card_fields(**extra):
    """A card of a 5-tag model (view and arch are replaced by save_model with the model's)."""
    fields = {
        "view": "image",
        "arch": {},
        "backbone": "alexnet",
        "vocabulary": [f"t{i}" for i in range(5)],
        "view_spec": {"input_size": 64},
        "thresholds": [0.5] * 5,
    }
    return ModelCard(**{**fields, **extra})


def dataset(vocabulary, view_spec):
    """A manifest with the fields check_compatible compares."""
    return DatasetManifest(
        recipe={},
        seed=0,
        experiments=10,
        images_per_experiment=1,
        view_spec=view_spec,
        keep_raw=False,
        vocabulary=vocabulary,
    )


@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize("size", [64, 96])
def test_image_backbones_any_size(backbone, size):
    model = ImageTagger(5, backbone, width=8).eval()
    image, coeff = torch.rand(2, 1, size, size), torch.randn(2, *COEFF)
    logits = model(image, coeff)
    assert logits.shape == (2, 5)
    # the image view ignores the coefficients
    torch.testing.assert_close(model(image, torch.zeros_like(coeff)), logits)


def test_coeff_and_joint_views():
    image, coeff = torch.rand(3, 1, 64, 64), torch.randn(3, *COEFF)
    coeff_model = CoeffTagger(5, COEFF).eval()
    torch.testing.assert_close(
        coeff_model(torch.zeros_like(image), coeff), coeff_model(image, coeff)
    )
    joint = JointTagger(5, COEFF, width=8).eval()
    assert joint(image, coeff).shape == (3, 5)
    with pytest.raises(ValueError, match=r"shape \(3, 16, 31\), the network expects \(3, 16, 32\)"):
        coeff_model(image, coeff[..., :31])


def test_default_joint_weights_fit_the_budget():
    """The shipped joint tagger (default widths, 17 tags) stays far under 20 MB of weights."""
    joint = JointTagger(17, COEFF)
    megabytes = sum(t.numel() * t.element_size() for t in joint.state_dict().values()) / 1e6
    assert megabytes < 20


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown backbone 'lenet'; allowed: alexnet, vgg, resnet"):
        ImageTagger(5, "lenet")
    with pytest.raises(ValueError, match=r"width must be in \[4, 256\]"):
        ImageTagger(5, "vgg", width=2)


def test_save_load_round_trip(tmp_path):
    model = JointTagger(5, COEFF, width=8).eval()
    save_model(model, card_fields(), tmp_path)
    loaded, card = load_model(tmp_path)
    assert card.view == "joint" and card.arch == model.arch
    image, coeff = torch.rand(2, 1, 64, 64), torch.randn(2, *COEFF)
    torch.testing.assert_close(loaded(image, coeff), model(image, coeff))


def test_bad_checkpoints(tmp_path):
    with pytest.raises(UserError, match="no model card"):
        load_model(tmp_path)
    save_model(ImageTagger(5, width=8), card_fields(), tmp_path)
    weights = tmp_path / "model.safetensors"
    card = json.loads((tmp_path / "model.json").read_text())
    # weights of another network than the card describes
    (tmp_path / "model.json").write_text(
        json.dumps({**card, "arch": {**card["arch"], "width": 16}})
    )
    with pytest.raises(ValueError, match="do not match the network described by"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps(card))
    weights.write_bytes(weights.read_bytes()[:200])  # truncated
    with pytest.raises(ValueError, match="model.safetensors are corrupt"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match="model.json is not valid JSON"):
        load_model(tmp_path)


def test_compatibility_names_both_sides():
    card = card_fields(view="image")
    check_compatible(card, dataset(card.vocabulary, {"input_size": 64}), "RUN", "DATA")
    with pytest.raises(
        ValueError,
        match=r"view_spec mismatch: model RUN was trained with \{'input_size': 64, .*\}, "
        r"but dataset DATA has \{'input_size': 128, .*\}",
    ):
        check_compatible(card, dataset(card.vocabulary, {"input_size": 128}), "RUN", "DATA")
    with pytest.raises(ValueError, match="vocabulary mismatch: model RUN"):
        check_compatible(card, dataset(["a"], {"input_size": 64}), "RUN", "DATA")


@pytest.mark.parametrize("view, compatible", [("image", True), ("coeff", False), ("joint", False)])
def test_compatibility_compares_only_what_the_view_uses(view, compatible):
    """Other Fourier-Bessel zeros matter to coefficient and joint models, not to image models."""
    card = card_fields(view=view, view_spec={"input_size": 64, "zeros": 32})
    manifest = dataset(card.vocabulary, {"input_size": 64, "zeros": 64})
    if compatible:
        check_compatible(card, manifest, "RUN", "DATA")
    else:
        with pytest.raises(ValueError, match="'zeros': 32.*'zeros': 64"):
            check_compatible(card, manifest, "RUN", "DATA")


def test_cards_of_earlier_versions_load(tmp_path):
    """A card from before the rename of ``recipe`` to ``training`` (and before calibration,
    as the shipped card was until it was calibrated) still loads."""
    from scattertag.models import pretrained_dir

    raw = json.loads((pretrained_dir() / "model.json").read_text())
    raw["recipe"] = raw.pop("training", raw.get("recipe"))
    raw.pop("calibration", None)
    (tmp_path / "model.json").write_text(json.dumps(raw))
    card = ModelCard.read(tmp_path)
    assert "recipe" in raw and card.training == raw["recipe"] and card.view == raw["view"]
    assert ModelCard.from_dict(card.to_dict()) == card
    with pytest.raises(UserError, match="lacks fields \\['thresholds'\\]"):
        ModelCard.from_dict({k: v for k, v in raw.items() if k != "thresholds"}, "old.json")


def _with_running_stats(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` after a few training steps' worth of batch-norm statistics (not the identity)."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g))
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g))
    return model.eval()


@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_folded_batch_norms_give_the_same_logits(backbone):
    from scattertag.models.fold import fold_batch_norms

    model = _with_running_stats(JointTagger(5, COEFF, backbone, width=8, in_channels=2))
    folded = fold_batch_norms(model)
    image, coeff = torch.rand(3, 2, 64, 96), torch.randn(3, *COEFF)
    with torch.no_grad():
        torch.testing.assert_close(folded(image, coeff), model(image, coeff), atol=1e-4, rtol=1e-4)
    norms = [
        type(m) for m in folded.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]
    # only the two input norms stay (they act before zero padding); the original is untouched
    assert len(norms) == 2
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())
