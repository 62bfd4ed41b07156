"""Per-tag probability calibration: temperature or Platt scaling, ECE, reliability diagrams.

A tagger's raw probability p = sigmoid(z) of tag t is calibrated as

    p' = sigmoid(a_t z + b_t)

with a_t = 1 / T_t > 0 (temperature scaling: b_t = 0) or free (a_t, b_t) (Platt scaling),
fitted on held-out frames by minimising the binary cross-entropy of the known labels plus
a weak Gaussian prior ``prior * ((log a_t)^2 + b_t^2) / 2`` that keeps tags with few labels
near the identity. Blank (NaN) labels are ignored.

The map is affine in the logit and the tag head is linear, so it is folded into the head
(:func:`fold_into_head`: W_t <- a_t W_t, c_t <- a_t c_t + b_t): the saved network itself
outputs calibrated logits, and predict, evaluate and the service apply it without knowing.
The card's ``calibration`` records (a, b) composed over every calibration applied so far.

Expected calibration error over equal-width probability bins B_1..B_M:

    ECE = sum_m |B_m| / n * |mean(y in B_m) - mean(p in B_m)|

per tag over its known labels, and overall over every known (frame, tag) pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scattertag import plotting
from scattertag.models.card import ModelCard
from scattertag.models.taggers import head_layer

#: Calibration methods: name -> whether the bias b is fitted.
METHODS = {"temperature": False, "platt": True}


@dataclass(frozen=True)
class Calibration:
    """Per-tag affine logit map z -> scale * z + bias; (T,) arrays, scale > 0."""

    scale: np.ndarray
    bias: np.ndarray
    method: str = "temperature"

    @classmethod
    def identity(cls, tags: int) -> Calibration:
        """The map that changes nothing."""
        return cls(np.ones(tags), np.zeros(tags), "identity")

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        """(n, T) calibrated logits of (n, T) logits."""
        return logits * self.scale[None, :] + self.bias[None, :]

    def then(self, other: Calibration) -> Calibration:
        """The map ``other(self(z))``."""
        return Calibration(
            self.scale * other.scale, other.scale * self.bias + other.bias, other.method
        )

    def probability(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of (..., T) raw probabilities (for thresholds)."""
        p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
        return sigmoid(self(np.log(p / (1 - p)).reshape(-1, len(self.scale)))).reshape(p.shape)

    def to_dict(self) -> dict:
        """JSON form for the model card."""
        return {"method": self.method, "scale": self.scale.tolist(), "bias": self.bias.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        """Inverse of :meth:`to_dict`."""
        return cls(np.asarray(d["scale"], float), np.asarray(d["bias"], float), d["method"])


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)), without overflow warnings."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def fit_calibration(
    logits: np.ndarray,
    labels: np.ndarray,
    method: str = "temperature",
    prior: float = 1.0,
    iterations: int = 200,
) -> Calibration:
    """Per-tag (a, b) minimising the known-label BCE of sigmoid(a z + b) plus the prior.

    logits, labels : (n, T); labels 1 / 0 / NaN (unknown). Tags without both a positive and
    a negative label are left at the identity.
    """
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; allowed: {', '.join(METHODS)}")
    z = torch.as_tensor(np.nan_to_num(logits), dtype=torch.float64)
    known = torch.as_tensor(np.isfinite(labels))
    y = torch.as_tensor(np.nan_to_num(labels), dtype=torch.float64)
    both = (known & (y > 0.5)).any(0) & (known & (y < 0.5)).any(0)
    log_a = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=METHODS[method])
    params = [log_a] + ([b] if METHODS[method] else [])
    optimiser = torch.optim.LBFGS(params, max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            z * log_a.exp() + b, y, reduction="none"
        )
        per_tag = (loss * known).sum(0) / known.sum(0).clamp(min=1)
        penalty = prior * (log_a**2 + b**2) / 2 / known.sum(0).clamp(min=1)
        total = ((per_tag + penalty) * both).sum()
        total.backward()
        return total

    optimiser.step(closure)
    scale = np.where(both.numpy(), log_a.detach().exp().numpy(), 1.0)
    bias = np.where(both.numpy(), b.detach().numpy(), 0.0)
    return Calibration(scale, bias, method)


@torch.no_grad()
def fold_into_head(model: torch.nn.Module, calibration: Calibration) -> torch.nn.Module:
    """Fold z -> a z + b into the model's last linear layer (in place)."""
    linear = head_layer(model)
    scale = torch.as_tensor(calibration.scale, dtype=linear.weight.dtype)
    bias = torch.as_tensor(calibration.bias, dtype=linear.weight.dtype)
    linear.weight.mul_(scale[:, None])
    linear.bias.mul_(scale).add_(bias)
    return model


def card_calibration(card: ModelCard) -> Calibration:
    """The calibration recorded in a model card (identity when it has none)."""
    entry = card.calibration
    if not entry:
        return Calibration.identity(len(card.vocabulary))
    return Calibration.from_dict(entry)


def reliability(
    labels: np.ndarray, probs: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean probability, fraction positive, count) per equal-width bin of known labels."""
    known = np.isfinite(labels)
    y, p = labels[known].astype(np.float64), np.asarray(probs, np.float64)[known]
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    count = np.bincount(which, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore"):
        mean_p = np.bincount(which, p, minlength=bins) / count
        frac = np.bincount(which, y, minlength=bins) / count
    return mean_p, frac, count


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """ECE = sum_m |B_m|/n |mean y - mean p| over the known pairs; NaN if none is known."""
    mean_p, frac, count = reliability(labels, probs, bins)
    if count.sum() == 0:
        return float("nan")
    used = count > 0
    return float(np.sum(count[used] * np.abs(frac[used] - mean_p[used])) / count.sum())


def ece_table(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> tuple[np.ndarray, float]:
    """((T,) ECE of each tag, overall ECE over all known (frame, tag) pairs)."""
    per_tag = np.array(
        [
            expected_calibration_error(labels[:, t], probs[:, t], bins)
            for t in range(labels.shape[1])
        ]
    )
    return per_tag, expected_calibration_error(labels, probs, bins)


def plot_reliability(
    labels: np.ndarray,
    curves: dict[str, np.ndarray],
    path: str | Path,
    title: str,
    bins: int = 10,
) -> Path:
    """Reliability diagram of every known (frame, tag) pair, one curve per name in ``curves``.

    ``curves``: name -> (n, T) probabilities (e.g. "raw" and "calibrated").
    """
    fig = plotting.new_figure(figsize=(4.6, 4.6))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1, label="perfect")
    for name, probs in curves.items():
        mean_p, frac, count = reliability(labels, probs, bins)
        used = count > 0
        ece = expected_calibration_error(labels, probs, bins)
        ax.plot(mean_p[used], frac[used], "o-", ms=3, label=f"{name} (ECE {ece:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted probability (bin mean)")
    ax.set_ylabel("fraction of frames with the tag")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    return plotting.save(fig, Path(path))
