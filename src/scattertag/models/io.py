"""Saving and loading taggers: ``model.safetensors`` (weights) + ``model.json`` (the model card).

The card (see docs/interfaces.md) holds ``view``, ``backbone``, ``arch`` (constructor
kwargs), ``vocabulary``, ``view_spec``, ``thresholds``, ``recipe`` and ``metrics``.
Loading builds the network from the card and reads the weights with safetensors, so no
code is ever executed from a checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from scattertag.io.files import atomic_path, read_json, sha256, write_json
from scattertag.models.checks import DIGEST_FIELD, check_card
from scattertag.models.joint import JointTagger
from scattertag.models.taggers import CoeffTagger, ImageTagger, Tagger

#: view name -> tagger class.
MODELS: dict[str, type[Tagger]] = {"image": ImageTagger, "coeff": CoeffTagger, "joint": JointTagger}

WEIGHTS = "model.safetensors"
CARD = "model.json"
CARD_FIELDS = (
    "view",
    "backbone",
    "arch",
    "vocabulary",
    "view_spec",
    "thresholds",
    "recipe",
    "metrics",
)


def pretrained_dir() -> Path:
    """Folder of the tagger shipped inside the package."""
    return Path(__file__).resolve().parent.parent / "pretrained"


def build_model(view: str, arch: dict) -> Tagger:
    """A freshly initialised tagger of ``view`` built from constructor kwargs ``arch``."""
    if view not in MODELS:
        raise ValueError(f"unknown view {view!r}; allowed: {', '.join(MODELS)}")
    return MODELS[view](**arch)


def save_model(model: Tagger, card: dict, run_dir: str | Path) -> Path:
    """Write ``model``'s weights and its card (``view`` and ``arch`` taken from the model) to ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    card = {**card, "view": model.view, "arch": model.arch}
    missing = [f for f in CARD_FIELDS if f not in card]
    if missing:
        raise ValueError(f"model card lacks fields {missing}")
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(run_dir / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"view": model.view})
        card[DIGEST_FIELD] = sha256(tmp)  # binds the card to these weights
    write_json(run_dir / CARD, card)
    return run_dir


def read_card(run_dir: str | Path) -> dict:
    """The model card of ``run_dir``; ValueError naming the file if missing or invalid."""
    path = Path(run_dir) / CARD
    if not path.is_file():
        raise FileNotFoundError(
            f"no model card {path}: not a model directory (expected {CARD} and {WEIGHTS})"
        )
    card = read_json(path)
    if not isinstance(card, dict):
        raise ValueError(f"model card {path} is not a JSON object")
    missing = [f for f in CARD_FIELDS if f not in card]
    if missing:
        raise ValueError(f"model card {path} lacks fields {missing}")
    return card


def load_model(run_dir: str | Path | None = None) -> tuple[Tagger, dict]:
    """(model in eval mode, card) from ``run_dir`` (default: the shipped tagger)."""
    run_dir = pretrained_dir() if run_dir is None else Path(run_dir)
    card = read_card(run_dir)
    model = build_model(card["view"], card["arch"])
    path = run_dir / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(
            f"model weights {path} are missing (its card {run_dir / CARD} exists)"
        )
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"model weights {path} are corrupt or not safetensors: {err}") from None
    expected = model.state_dict()
    if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in expected):
        bad = sorted(k for k in expected if k not in state or state[k].shape != expected[k].shape)
        bad += sorted(set(state) - set(expected))
        raise ValueError(
            f"model weights {path} do not match the network described by {run_dir / CARD} "
            f"(view {card['view']!r}, arch {card['arch']}): mismatched tensors {bad[:5]}"
        )
    check_card(
        model,
        state,
        card["vocabulary"],
        card["thresholds"],
        run_dir / CARD,
        path,
        card.get(DIGEST_FIELD),
    )
    model.load_state_dict(state)
    return model.eval(), card


def check_compatible(card: dict, manifest: dict, model_name: str, data_name: str) -> None:
    """Raise ValueError, naming both sides, unless the dataset's vocabulary and view spec match the model's.

    Only the view-spec fields the model's view depends on are compared: an image-view model
    is unaffected by the Fourier-Bessel settings, a coefficient-view model by the input size.
    """
    from scattertag.features.views import ViewSpec

    view = card["view"]
    sides = {
        "vocabulary": (list(card["vocabulary"]), list(manifest["vocabulary"])),
        "view_spec": (
            ViewSpec.from_dict(card["view_spec"]).fields_for(view),
            ViewSpec.from_dict(manifest["view_spec"]).fields_for(view),
        ),
    }
    for field, (ours, theirs) in sides.items():
        if ours != theirs:
            raise ValueError(
                f"{field} mismatch: model {model_name} was trained with {ours}, but dataset {data_name} has {theirs}"
            )
