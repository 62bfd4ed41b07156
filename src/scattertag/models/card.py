"""The model card ``model.json``: what a trained tagger is, what it was trained on, how it scores.

Fields (see docs/interfaces.md): ``view`` and ``arch`` (the network and its constructor
kwargs), ``backbone``, ``vocabulary`` (tag order of the outputs), ``view_spec`` (the
features' settings, a ViewSpec dict), ``thresholds`` (per-tag decision thresholds tuned on
validation), ``training`` (the training configuration and what it saw), ``metrics``,
after calibration ``calibration``, and ``weights_sha256`` (binds the card to its weights).
Cards written before the rename call ``training`` ``recipe``; both are read. Fields this
version does not know are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scattertag.errors import UserError
from scattertag.io.files import read_json, write_json

CARD = "model.json"

#: Old field name -> current one (cards written by earlier versions still load).
RENAMED = {"recipe": "training"}


@dataclass(frozen=True)
class ModelCard:
    """The description of one trained tagger that travels with its weights."""

    view: str
    arch: dict[str, Any]
    backbone: str | None
    vocabulary: list[str]
    view_spec: dict[str, Any]
    thresholds: list[float]
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    weights_sha256: str | None = None  # of model.safetensors, written by save_model
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the layout of ``model.json``; ``extra`` fields at the top level)."""
        data = asdict(self)
        extra = data.pop("extra")
        for optional in ("calibration", "weights_sha256"):
            if data[optional] is None:
                del data[optional]
        return {**data, **extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "model card") -> ModelCard:
        """A card from its dict (old field names accepted); UserError naming ``source``."""
        data = {RENAMED.get(k, k): v for k, v in data.items()}
        required = ("view", "arch", "backbone", "vocabulary", "view_spec", "thresholds")
        missing = [f for f in required if f not in data]
        if missing:
            raise UserError(f"model card {source} lacks fields {missing}")
        known = set(cls.__dataclass_fields__) - {"extra"}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**{k: v for k, v in data.items() if k in known}, extra=extra)

    @classmethod
    def read(cls, run_dir: str | Path) -> ModelCard:
        """The card of ``run_dir``; UserError naming the file if missing or invalid."""
        path = Path(run_dir) / CARD
        if not path.is_file():
            raise UserError(
                f"no model card {path}: not a model directory (expected {CARD} and weights)"
            )
        data = read_json(path)
        if not isinstance(data, dict):
            raise UserError(f"model card {path} is not a JSON object")
        return cls.from_dict(data, str(path))

    def write(self, run_dir: str | Path) -> Path:
        """Write ``run_dir/model.json`` atomically."""
        return write_json(Path(run_dir) / CARD, self.to_dict())
