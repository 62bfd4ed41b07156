"""Saving and loading taggers: ``model.safetensors`` (weights) + ``model.json`` (the model card).

The card is a :class:`~scattertag.models.card.ModelCard`. Loading builds the network from
the card and reads the weights with safetensors, so no code is ever executed from a
checkpoint.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from scattertag.data.manifest import DatasetManifest
from scattertag.errors import UserError
from scattertag.io.files import atomic_path, sha256
from scattertag.models.card import CARD, ModelCard
from scattertag.models.checks import check_card
from scattertag.models.joint import JointTagger
from scattertag.models.taggers import CoeffTagger, ImageTagger, Tagger

#: view name -> tagger class.
MODELS: dict[str, type[Tagger]] = {"image": ImageTagger, "coeff": CoeffTagger, "joint": JointTagger}

WEIGHTS = "model.safetensors"


def pretrained_dir() -> Path:
    """Folder of the tagger shipped inside the package."""
    return Path(__file__).resolve().parent.parent / "pretrained"


def build_model(view: str, arch: dict) -> Tagger:
    """A freshly initialised tagger of ``view`` built from constructor kwargs ``arch``."""
    if view not in MODELS:
        raise UserError(f"unknown view {view!r}; allowed: {', '.join(MODELS)}")
    return MODELS[view](**arch)


def save_model(model: Tagger, card: ModelCard, run_dir: str | Path) -> Path:
    """Write ``model``'s weights and its card (``view`` and ``arch`` taken from the model)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(run_dir / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"view": model.view})
        digest = sha256(tmp)  # binds the card to these weights
    replace(card, view=model.view, arch=model.arch, weights_sha256=digest).write(run_dir)
    return run_dir


def load_model(run_dir: str | Path | None = None) -> tuple[Tagger, ModelCard]:
    """(model in eval mode, card) from ``run_dir`` (default: the shipped tagger)."""
    run_dir = pretrained_dir() if run_dir is None else Path(run_dir)
    card = ModelCard.read(run_dir)
    model = build_model(card.view, card.arch)
    path = run_dir / WEIGHTS
    if not path.is_file():
        raise UserError(f"model weights {path} are missing (its card {run_dir / CARD} exists)")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"model weights {path} are corrupt or not safetensors: {err}") from None
    expected = model.state_dict()
    if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in expected):
        bad = sorted(k for k in expected if k not in state or state[k].shape != expected[k].shape)
        bad += sorted(set(state) - set(expected))
        raise UserError(
            f"model weights {path} do not match the network described by {run_dir / CARD} "
            f"(view {card.view!r}, arch {card.arch}): mismatched tensors {bad[:5]}"
        )
    check_card(
        model, state, card.vocabulary, card.thresholds, run_dir / CARD, path, card.weights_sha256
    )
    model.load_state_dict(state)
    return model.eval(), card


def check_compatible(
    card: ModelCard, manifest: DatasetManifest, model_name: str, data_name: str
) -> None:
    """UserError naming both sides unless the dataset's vocabulary and view spec match the model's.

    Only the view-spec fields the model's view depends on are compared: an image-view model
    is unaffected by the Fourier-Bessel settings, a coefficient-view model by the input size.
    """
    from scattertag.features.views import ViewSpec

    view = card.view
    sides = {
        "vocabulary": (list(card.vocabulary), list(manifest.vocabulary)),
        "view_spec": (
            ViewSpec.from_dict(card.view_spec).fields_for(view),
            ViewSpec.from_dict(manifest.view_spec).fields_for(view),
        ),
    }
    for field, (ours, theirs) in sides.items():
        if ours != theirs:
            raise UserError(
                f"{field} mismatch: model {model_name} was trained with {ours}, "
                f"but dataset {data_name} has {theirs}"
            )
