"""Compare fine-tuning recipes on one labelled kind: test mAP of the kind and of synthetic shards.

    python scripts/finetune_sweep.py --train flat_train/labels.tsv --test probe_flat/labels.tsv \\
        --data reference_seed1 --config '{}' --config '{"norm": "frozen"}' --blends 0.5 1 \\
        --cache views --out sweep.jsonl

For each ``--config`` (a JSON object of :class:`~scattertag.adapt.finetune.FinetuneConfig`
fields) the shipped tagger (or ``--model``) is fine-tuned on ``--train`` exactly as
``scattertag finetune`` does (held-out groups, early stopping, recalibration), with replay
from shards ``--replay-shards`` of ``--data``; then the kind's ``--test`` frames and the
dataset's ``--test-shards`` are scored before and after, once per ``--blends`` value (the
config's ``blend`` is replaced by each: the network is trained once, then blended with the
base; the recalibration is monotone per tag, so AP does not depend on it). The views are
made once (``--cache``), so each recipe costs only its training. ``--out`` appends one JSON
line per result with the per-tag APs and the labelled positives per tag of both tables.
"""

import argparse
import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from scattertag.adapt.calibration import sigmoid
from scattertag.adapt.evaluate_labels import load_tagger
from scattertag.adapt.exposure import resample_exposure
from scattertag.adapt.finetune import (
    FinetuneConfig,
    Training,
    blend_weights,
    finetune_model,
    split_groups,
)
from scattertag.adapt.frames import TensorItems, labelled_frames, labelled_variants
from scattertag.adapt.labels import read_labels
from scattertag.data import ShardDataset
from scattertag.evaluate import mean_average_precision, per_tag_ap, predict_scores
from scattertag.features.views import ViewSpec
from scattertag.io.files import write_text

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--train", required=True, help="labels table to fine-tune on")
parser.add_argument("--test", required=True, help="labels table of held-out frames, same kind")
parser.add_argument("--data", required=True, help="built dataset of the base model's recipe")
parser.add_argument("--test-shards", type=int, nargs="+", default=[5, 6, 7, 8, 9])
parser.add_argument("--replay-shards", type=int, nargs="+", default=[0, 1, 2, 3, 4])
parser.add_argument("--replay-frames", type=int, default=64)
parser.add_argument("--config", action="append", default=[], help="JSON FinetuneConfig fields")
parser.add_argument("--blends", type=float, nargs="+", default=[1.0], help="blend values")
parser.add_argument("--model", help="base model (default: the shipped tagger)")
parser.add_argument("--cache", help="folder for the labelled frames' views")
parser.add_argument("--out", help="JSON-lines file to append the results to")
parser.add_argument("--threads", type=int, default=1)
parser.add_argument(
    "--no-held-out",
    action="store_true",
    help="train on every --train frame for the config's max_epochs and keep the last epoch "
    "(no early stopping, no recalibration): what longer training could reach",
)
args = parser.parse_args()
torch.set_num_threads(args.threads)

model, card = load_tagger(args.model)
vocabulary, spec = list(card.vocabulary), ViewSpec.from_dict(card.view_spec)
test = labelled_frames(read_labels(args.test), vocabulary, spec, cache=args.cache)
pool = ShardDataset(args.data, args.replay_shards)
rows = np.random.default_rng(0).permutation(len(pool))[: args.replay_frames]
items = [pool[int(i)] for i in rows]
replay = TensorItems(
    *(np.stack([it[k].numpy() for it in items]) for k in ("image", "coeff", "labels"))
)
synthetic = ShardDataset(args.data, args.test_shards)
records: list[dict] = []


def scores(tagger) -> tuple[np.ndarray, float]:
    """(per-tag AP on the kind's test frames, mAP on the synthetic test shards)."""
    probs = sigmoid(predict_scores(tagger, test.dataset(), 32, logits=True)[1])
    return per_tag_ap(test.labels, probs), mean_average_precision(
        *predict_scores(tagger, synthetic, 64)
    )


def record(config: str, blend: float | None, ap: np.ndarray, syn: float, **extra) -> None:
    """Keep one result (written to --out at the end)."""
    aps = [None if np.isnan(x) else round(float(x), 4) for x in ap]
    records.append(
        {"config": config, "blend": blend, "kind": float(np.nanmean(ap)), "synthetic": syn}
        | {"ap": dict(zip(vocabulary, aps, strict=True))}
        | extra
    )


ap0, syn0 = scores(model)
train_table = read_labels(args.train)
train_labels = train_table.aligned(vocabulary)
positives = {
    "train_positives": np.nansum(train_labels, 0).tolist(),
    "test_positives": np.nansum(test.labels, 0).tolist(),
}
record("base", None, ap0, syn0, **positives)
print(f"base: test mAP {np.nanmean(ap0):.4f}, synthetic mAP {syn0:.4f}")
print(f"{'config':<50} {'blend':>5} {'epoch':>5} {'test mAP':>9} {'synthetic':>9}")
for text in args.config or ["{}"]:
    config = FinetuneConfig(**json.loads(text))
    variants = labelled_variants(
        train_table,
        vocabulary,
        spec,
        copies=config.exposure_copies,
        counts_map=resample_exposure,
        seed=config.seed,
        cache=args.cache,
    )
    frames = variants[0]
    held = split_groups(frames.groups, config.val_fraction, config.seed)
    if args.no_held_out:
        training = Training(variants, None, replay)
    else:
        training = Training([v.subset(~held) for v in variants], frames.subset(held), replay)
    tuned, _, log = finetune_model(model, card, training, replace(config, blend=1.0))
    for blend in args.blends:
        blended = blend_weights(model, copy.deepcopy(tuned), blend)
        ap, syn = scores(blended)
        extra = {"best_epoch": log["best_epoch"], "epochs": log["epochs_run"]}
        record(text, blend, ap, syn, **extra, held_out=not args.no_held_out)
        print(f"{text:<50} {blend:>5.2f} {log['best_epoch']:>5} {np.nanmean(ap):>9.4f} {syn:>9.4f}")
if args.out:
    old = Path(args.out).read_text() if Path(args.out).is_file() else ""
    write_text(args.out, old + "".join(json.dumps(r) + "\n" for r in records))
