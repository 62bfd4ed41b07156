"""The one check of a model card against its network and weights, run at every load.

A card and a network that disagree give shifted columns or NaN probabilities with exit
status 0, so loading refuses them with a message naming both files:

* the number of tags the head outputs must equal the card's vocabulary length, and there
  must be one threshold per tag, each finite in [0, 1];
* every weight must be finite (no NaN or Inf);
* the weights file must have the SHA-256 the card records (``weights_sha256``, written by
  ``save_model``), so a crash between writing the two files is caught.

Scores a model produces are checked too (:func:`check_scores`): metrics of NaN
probabilities would be meaningless numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from scattertag.io.files import sha256

#: Card field holding the SHA-256 of the weights file it was saved with.
DIGEST_FIELD = "weights_sha256"


def head_size(model: torch.nn.Module) -> int | None:
    """Number of tags the network outputs (its head's last layer), None if it has no such head."""
    head = getattr(model, "head", None)
    last = head[-1] if isinstance(head, torch.nn.Sequential) and len(head) else head
    out = getattr(last, "out_features", None)
    return int(out) if out is not None else None


def check_card(
    model: torch.nn.Module,
    state: Mapping[str, torch.Tensor],
    vocabulary: Sequence[str],
    thresholds: Sequence[float],
    card_path: str | Path,
    weights_path: str | Path,
    digest: str | None = None,
) -> None:
    """Raise ValueError naming the files unless card, network and weights agree (see module doc)."""
    where = f"model card {card_path} and weights {weights_path}"
    tags = head_size(model)
    if tags is not None and tags != len(vocabulary):
        raise ValueError(
            f"{where} disagree: the network outputs {tags} tags, the vocabulary has "
            f"{len(vocabulary)}"
        )
    if len(thresholds) != len(vocabulary):
        raise ValueError(
            f"{card_path}: {len(thresholds)} thresholds for {len(vocabulary)} tags; "
            "need one per tag"
        )
    bad = [t for t in thresholds if not (isinstance(t, (int, float)) and math.isfinite(t))]
    if bad or not all(0.0 <= t <= 1.0 for t in thresholds):
        raise ValueError(f"{card_path}: thresholds must be finite numbers in [0, 1]")
    broken = [name for name, t in state.items() if t.is_floating_point() and not t.isfinite().all()]
    if broken:
        raise ValueError(
            f"model weights {weights_path} hold NaN or Inf values in {len(broken)} tensor(s), "
            f"e.g. {broken[:3]}"
        )
    if digest is not None:
        actual = sha256(weights_path)
        if actual != digest:
            raise ValueError(
                f"model weights {weights_path} do not belong to card {card_path}: SHA-256 "
                f"{actual[:12]}..., the card records {digest[:12]}... (saving was interrupted, "
                "or one of the two files was replaced); save or copy the pair again"
            )


def check_scores(scores: np.ndarray, source: str) -> np.ndarray:
    """``scores`` if all finite; ValueError saying how many are NaN or Inf otherwise."""
    finite = np.isfinite(scores)
    if not finite.all():
        rows = int((~finite).any(axis=-1).sum()) if scores.ndim > 1 else int((~finite).sum())
        raise ValueError(
            f"{source}: the model gave NaN or Inf probabilities for {rows} of {len(scores)} "
            "images (broken weights or inputs?); refusing to score them"
        )
    return scores
