"""Fine-tune a trained tagger on a few labelled frames, with replay, then recalibrate.

Loss per step: the binary cross-entropy of the labelled batch over its *known* labels only
(blank tags contribute nothing), plus ``replay_weight`` times the cross-entropy of a batch
of synthetic replay frames (all tags known), so tags the user did not label are not
forgotten. Augmentation respects the physics: a random element of D4 about the beam centre
(cake rows reversed and rolled, Fourier-Bessel phases changed: :mod:`scattertag.augment`),
and per frame a few exposure variants made from the counts before the views
(:mod:`scattertag.adapt.exposure`: Poisson thinning, intensity scaling).

What is updated (``update``):

* ``head``: only the last linear layer (the tag head);
* ``last`` (default): the head and the last block of each trunk, at ``trunk_lr_scale`` of
  the head's rate -- enough freedom to learn a new look from 10-200 frames, little to overfit;
* ``all``: every weight, trunks at ``trunk_lr_scale`` of the head's rate.

Batch-norm statistics (``norm``) are kept as trained ("frozen"), or re-estimated once,
before training, over every training frame and exposure variant ("adapt") or over those
and the replay frames ("mixed", default: the user's frames and the base model's kind in
one estimate); during training they stay fixed (batches of a few frames would give noisy
ones). A new detector shifts the statistics of every layer's input, and that part of the
shift needs no labels. A held-out part of the user's frames (whole groups)
stops training when its known-label loss has not improved for ``patience`` epochs; the
best epoch is kept. With ``blend`` < 1 (default 0.5) the weights and statistics become
(1 - blend) base + blend fine-tuned (weight-space ensembling), which keeps more of the base
model's skill on its own kind of frames. Then per-tag temperature scaling is refitted on
the held-out frames (:mod:`scattertag.adapt.calibration`), folded into the head, and
thresholds are chosen on the calibrated scale (F1-tuned only for tags with
``threshold_min_labels`` held-out positives and negatives; the others keep the base
model's, mapped through the new calibration).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from scattertag.adapt.calibration import (
    card_calibration,
    fit_calibration,
    fold_into_head,
    sigmoid,
)
from scattertag.adapt.frames import LabelledFrames, TensorItems
from scattertag.adapt.scoring import score_labelled
from scattertag.augment import augment
from scattertag.errors import UserError
from scattertag.evaluate import tune_thresholds
from scattertag.models.card import ModelCard
from scattertag.models.taggers import Tagger

#: What fine-tuning may change.
UPDATES = ("head", "last", "all")

#: Batch-norm statistics: kept ("frozen"), re-estimated on the labelled frames ("adapt"), or
#: on the labelled and replay frames together ("mixed"), once, before training.
NORMS = ("frozen", "adapt", "mixed")


@dataclass(frozen=True)
class FinetuneConfig:
    """The fine-tuning recipe (stored in the card). Rates are AdamW peak rates of the head."""

    update: str = "last"
    max_epochs: int = 40
    patience: int = 8
    lr: float = 1e-3
    trunk_lr_scale: float = 0.1
    weight_decay: float = 1e-4
    batch_size: int = 8
    replay_batch: int = 8
    replay_weight: float = 1.0
    val_fraction: float = 0.25
    exposure_copies: int = 2
    calibration: str = "temperature"
    threshold_min_labels: int = 10
    norm: str = "mixed"
    blend: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.update not in UPDATES:
            raise UserError(f"update must be one of {', '.join(UPDATES)}, got {self.update!r}")
        for name, lo, hi in (
            ("max_epochs", 1, 10_000),
            ("patience", 1, 10_000),
            ("batch_size", 1, 4096),
            ("replay_batch", 0, 4096),
            ("exposure_copies", 0, 100),
            ("threshold_min_labels", 1, 1_000_000),
        ):
            if not lo <= getattr(self, name) <= hi:
                raise UserError(f"{name} must be in [{lo}, {hi}], got {getattr(self, name)}")
        if not 0 < self.lr < 1 or not 0 <= self.trunk_lr_scale <= 1:
            raise UserError(f"lr must be in (0, 1) and trunk_lr_scale in [0, 1], got {self}")
        if self.norm not in NORMS:
            raise UserError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if not 0 <= self.blend <= 1:
            raise UserError(f"blend must be in [0, 1], got {self.blend}")
        if not 0 < self.val_fraction < 1:
            raise UserError(f"val_fraction must be in (0, 1), got {self.val_fraction}")


def last_blocks(model: nn.Module) -> list[nn.Module]:
    """The last block of each trunk: an image trunk's last body layer, a coefficient trunk's fc."""
    blocks = []
    for name in ("trunk", "image_trunk", "coeff_trunk"):
        trunk = getattr(model, name, None)
        if trunk is not None:
            blocks.append(trunk.body[-1] if hasattr(trunk, "body") else trunk.fc)
    return blocks


def parameter_groups(model: nn.Module, config: FinetuneConfig) -> list[dict]:
    """AdamW groups: the head at ``lr``, the trunk parts that ``update`` frees at a scaled rate."""
    for p in model.parameters():
        p.requires_grad_(False)
    head = list(model.get_submodule("head").parameters())
    if config.update == "head":
        trunk = []
    elif config.update == "last":
        trunk = [p for block in last_blocks(model) for p in block.parameters()]
    else:
        trunk = [p for name, p in model.named_parameters() if not name.startswith("head.")]
    for p in head + trunk:
        p.requires_grad_(True)
    groups = [{"params": head, "lr": config.lr}]
    if trunk and config.trunk_lr_scale > 0:
        groups.append({"params": trunk, "lr": config.lr * config.trunk_lr_scale})
    return groups


def train_mode(model: nn.Module) -> nn.Module:
    """Training mode (dropout on) with every batch norm in eval mode (statistics frozen)."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    return model


def _norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every batch-norm layer of ``model``."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def reestimate_norms(
    model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]
) -> nn.Module:
    """Replace every batch norm's running mean and variance by their average over ``batches``.

    Each layer's statistics become the mean over batches of the batch moments (momentum
    None: a cumulative average), the network's weights are unchanged.
    """
    norms = _norms(model)
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for image, coeff in batches:
        model(image, coeff)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    return model.eval()


def norm_batches(
    training: Training, config: FinetuneConfig, batch: int = 16
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches for :func:`reestimate_norms`: every variant of the training frames, and for
    ``norm="mixed"`` the replay frames too, shuffled together."""
    image = np.concatenate([v.image for v in training.variants])
    coeff = np.concatenate([v.coeff for v in training.variants])
    if config.norm == "mixed" and training.replay is not None:
        image = np.concatenate([image, training.replay.image.numpy()])
        coeff = np.concatenate([coeff, training.replay.coeff.numpy()])
    order = np.random.default_rng(config.seed).permutation(len(image))
    return [
        (torch.as_tensor(image[rows]), torch.as_tensor(coeff[rows]))
        for rows in np.array_split(order, max(1, -(-len(order) // batch)))
    ]


@torch.no_grad()
def blend_weights(base: nn.Module, tuned: nn.Module, alpha: float) -> nn.Module:
    """``tuned`` with every floating tensor set to (1 - alpha) base + alpha tuned (in place)."""
    reference = base.state_dict()
    for name, value in tuned.state_dict().items():
        if value.is_floating_point():
            value.mul_(alpha).add_(reference[name], alpha=1 - alpha)
    return tuned


def known_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over the known (non-NaN) labels; 0 if none is known."""
    known = ~torch.isnan(labels)
    if not bool(known.any()):
        return logits.sum() * 0.0
    loss = nn.functional.binary_cross_entropy_with_logits(
        logits, torch.nan_to_num(labels), reduction="none"
    )
    return (loss * known).sum() / known.sum()


@torch.no_grad()
def logits_of(
    model: nn.Module, image: np.ndarray, coeff: np.ndarray, batch: int = 32
) -> np.ndarray:
    """(n, T) float64 logits of ``model`` in eval mode."""
    model.eval()
    out = [
        model(torch.as_tensor(image[i : i + batch]), torch.as_tensor(coeff[i : i + batch]))
        for i in range(0, len(image), batch)
    ]
    return torch.cat(out).double().numpy()


def split_groups(groups: list[str], fraction: float, seed: int) -> np.ndarray:
    """(n,) bool, True for held-out frames: whole groups, about ``fraction`` of the frames.

    With a single group the frames themselves are split. At least one frame on each side.
    """
    rng = np.random.default_rng(seed)
    names = sorted(set(groups))
    n = len(groups)
    if n < 2:
        raise UserError(f"fine-tuning needs at least 2 labelled frames, got {n}")
    if len(names) == 1:
        held = np.zeros(n, bool)
        held[rng.permutation(n)[: max(1, round(fraction * n))]] = True
        return held
    held = np.zeros(n, bool)
    for name in rng.permutation(names):
        if held.sum() >= fraction * n:
            break
        candidate = held | (np.asarray(groups) == name)
        if candidate.all():
            continue
        held = candidate
    return held


@dataclass
class Training:
    """Frames for one fine-tuning run: the labelled frames with their exposure variants."""

    variants: list[LabelledFrames]  # element 0: the frames as read; then exposure variants
    held_out: LabelledFrames | None  # early stopping and recalibration set
    replay: TensorItems | None


def finetune_model(
    model: Tagger,
    card: ModelCard,
    training: Training,
    config: FinetuneConfig,
    progress: bool = False,
) -> tuple[Tagger, ModelCard, dict]:
    """Fine-tune a copy of ``model``; returns (model, new card, log).

    The new card keeps the base card's fields, with recalibrated ``calibration`` and
    ``thresholds``; ``log`` holds per-epoch losses and the chosen epoch.
    """
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    base_model, model = model, copy.deepcopy(model)
    if config.norm != "frozen":
        reestimate_norms(model, norm_batches(training, config))
    cake = card.view_spec.get("image_space", "detector") in ("cake", "qcake")
    from scattertag.augment import group_size

    symmetries = group_size(list(card.vocabulary))
    groups = parameter_groups(model, config)
    optimiser = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    base = training.variants[0]
    n = len(base)
    held = training.held_out
    best, best_state, best_epoch, stale = np.inf, None, 0, 0
    history: list[dict] = []
    start = time.perf_counter()
    if held is not None:
        best = _held_loss(model, held)
        best_state, history = copy.deepcopy(model.state_dict()), [{"epoch": 0, "held_out": best}]
    bar = tqdm(range(1, config.max_epochs + 1), desc="finetune", disable=not progress)
    for epoch in bar:
        train_mode(model)
        order = rng.permutation(n)
        total = 0.0
        for i in range(0, n, config.batch_size):
            rows = order[i : i + config.batch_size]
            variant = training.variants[int(rng.integers(len(training.variants)))]
            image, coeff = augment(
                torch.as_tensor(variant.image[rows]),
                torch.as_tensor(variant.coeff[rows]),
                symmetries,
                generator,
                cake,
            )
            loss = known_bce(model(image, coeff), torch.as_tensor(variant.labels[rows]).float())
            if training.replay is not None and config.replay_batch > 0:
                pick = rng.integers(len(training.replay), size=config.replay_batch)
                r_image, r_coeff = augment(
                    training.replay.image[pick],
                    training.replay.coeff[pick],
                    symmetries,
                    generator,
                    cake,
                )
                loss = loss + config.replay_weight * known_bce(
                    model(r_image, r_coeff), training.replay.labels[pick]
                )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(rows)
        entry = {"epoch": epoch, "train_loss": total / n}
        if held is not None:
            entry["held_out"] = _held_loss(model, held)
            if entry["held_out"] < best - 1e-4:
                best, best_state, best_epoch, stale = (
                    entry["held_out"],
                    copy.deepcopy(model.state_dict()),
                    epoch,
                    0,
                )
            else:
                stale += 1
        history.append(entry)
        bar.set_postfix(loss=f"{entry['train_loss']:.3f}", held=f"{entry.get('held_out', 0):.3f}")
        if held is not None and stale >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch = int(history[-1]["epoch"])
    if config.blend < 1:
        blend_weights(base_model, model, config.blend)
    model.eval()
    new_card = recalibrated_card(model, card, held, config.calibration, config.threshold_min_labels)
    log = {
        "epochs_run": history[-1]["epoch"],
        "best_epoch": best_epoch,
        "history": history,
        "seconds": round(time.perf_counter() - start, 1),
    }
    return model, new_card, log


def _held_loss(model: nn.Module, held: LabelledFrames) -> float:
    """Known-label BCE of ``model`` on the held-out frames."""
    logits = torch.as_tensor(logits_of(model, held.image, held.coeff))
    return float(known_bce(logits, torch.as_tensor(held.labels)))


def recalibrated_card(
    model: nn.Module,
    card: ModelCard,
    held: LabelledFrames | None,
    method: str,
    min_labels: int = 10,
) -> ModelCard:
    """A copy of ``card`` after fitting ``method`` on ``held`` and folding it into ``model``.

    Thresholds: :func:`held_out_thresholds` (F1-best where the held-out frames have
    ``min_labels`` positives and negatives of a tag, else the old one mapped).
    """
    if held is None or method == "none":
        return card
    logits = logits_of(model, held.image, held.coeff)
    fit = fit_calibration(logits, held.labels, method)
    fold_into_head(model, fit)
    calibration = {
        **card_calibration(card).then(fit).to_dict(),
        "fitted_on": f"{len(held)} held-out labelled frames",
    }
    mapped = fit.probability(np.asarray(card.thresholds, dtype=np.float64)[None, :])[0]
    thresholds = held_out_thresholds(mapped, held.labels, sigmoid(fit(logits)), min_labels)
    return replace(card, calibration=calibration, thresholds=thresholds.tolist())


def held_out_thresholds(
    mapped: np.ndarray, labels: np.ndarray, probs: np.ndarray, min_labels: int
) -> np.ndarray:
    """(T,) thresholds: F1-best on (n, T) ``probs`` for tags with ``min_labels`` known
    positives and negatives in ``labels`` (1 / 0 / NaN), else ``mapped`` (the old ones).

    An F1-best cut-off on a handful of frames is noise (on 14 held-out frames it put Higher
    orders at 1.0 and Polycrystalline at 0.02), so few labels keep the base model's choice.
    """
    thresholds = np.array(mapped, dtype=np.float64)
    for t in range(len(thresholds)):
        known = np.isfinite(labels[:, t])
        y = labels[known, t]
        if (y > 0.5).sum() >= min_labels and (y < 0.5).sum() >= min_labels:
            thresholds[t] = tune_thresholds(y[:, None], probs[known, t : t + 1])[0]
    return thresholds


def held_out_scores(model: nn.Module, frames: LabelledFrames, card: ModelCard) -> dict:
    """Known-label scores of ``model`` on ``frames`` (mAP, ECE, per tag)."""
    probs = sigmoid(logits_of(model, frames.image, frames.coeff))
    return score_labelled(frames.labels, probs, list(card.vocabulary), np.asarray(card.thresholds))
