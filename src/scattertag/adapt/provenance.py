"""Which model and which cut-offs made a prediction table.

The model id is the first 12 hex digits of the SHA-256 of its weights file (the card's
``weights_sha256``), so two tables with the same id were made by the same network. Tags are
called at per-tag thresholds: the card's, unless overridden with ``--threshold TAG=VALUE``.
The CSV carries the id in a ``model`` column; a JSON sidecar ``<csv>.json`` next to it
holds the id, the model folder, every threshold (marking overrides), the calibration and,
for a fine-tuned model, its base model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from scattertag.errors import UserError

#: Hex digits of the weights digest used as the model id.
ID_DIGITS = 12


def card_field(card, name: str, default=None):
    """A model card's field, whether the card is a dict or a dataclass."""
    if isinstance(card, Mapping):
        return card.get(name, default)
    return getattr(card, name, default)


def model_id(card, weights: str | Path | None = None) -> str:
    """The model id: the first digits of the weights' SHA-256 (from the card, else the file)."""
    digest = card_field(card, "weights_sha256")
    if not digest and weights is not None:
        from scattertag.io.files import sha256 as file_sha256

        digest = file_sha256(weights)
    return str(digest or "unknown")[:ID_DIGITS]


def parse_thresholds(items: Sequence[str]) -> dict[str, float]:
    """{tag: value} from ``TAG=VALUE`` strings; UserError naming a malformed one."""
    out = {}
    for item in items:
        tag, sep, value = item.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not sep or not tag.strip() or not 0.0 <= number <= 1.0:
            raise UserError(f"--threshold {item!r}: expected TAG=VALUE with VALUE in [0, 1]")
        out[tag.strip()] = number
    return out


def with_overrides(
    vocabulary: Sequence[str], thresholds: Sequence[float], overrides: Mapping[str, float] | None
) -> np.ndarray:
    """(T,) thresholds with ``overrides`` by tag name; UserError naming unknown tags."""
    out = np.asarray(thresholds, dtype=np.float64).copy()
    unknown = sorted(set(overrides or {}) - set(vocabulary))
    if unknown:
        raise UserError(
            f"--threshold: unknown tag(s) {unknown}; the model's tags: {', '.join(vocabulary)}"
        )
    for tag, value in (overrides or {}).items():
        out[list(vocabulary).index(tag)] = value
    return out


def provenance(
    card,
    model_dir: str | Path,
    thresholds: np.ndarray,
    overrides: Mapping[str, float] | None = None,
) -> dict:
    """The sidecar record of a prediction table made with this model and these thresholds."""
    recipe = card_field(card, "training") or card_field(card, "recipe") or {}
    finetune = recipe.get("finetune") if isinstance(recipe, Mapping) else None
    return {
        "model_id": model_id(card, Path(model_dir) / "model.safetensors"),
        "model": str(model_dir),
        "weights_sha256": card_field(card, "weights_sha256"),
        "thresholds": dict(zip(card_field(card, "vocabulary"), map(float, thresholds))),
        "threshold_overrides": dict(overrides or {}),
        "calibration": card_field(card, "calibration"),
        "base_model_sha256": finetune.get("base_model_sha256") if finetune else None,
    }


def sidecar_path(csv_path: str | Path) -> Path:
    """``predictions.csv`` -> ``predictions.csv.json``."""
    path = Path(csv_path)
    return path.with_name(path.name + ".json")
