"""Compare fine-tuning recipes on one labelled kind: test mAP of the kind and of synthetic shards.

    python scripts/finetune_sweep.py --train flat_train/labels.tsv --test probe_flat/labels.tsv \\
        --data reference_seed1 --config '{}' --config '{"update": "head"}' --cache views

For each ``--config`` (a JSON object of :class:`~scattertag.adapt.finetune.FinetuneConfig`
fields) the shipped tagger (or ``--model``) is fine-tuned on ``--train`` exactly as
``scattertag finetune`` does (held-out groups, early stopping, recalibration), with replay
from shards ``--replay-shards`` of ``--data``; then the kind's ``--test`` frames and the
dataset's ``--test-shards`` are scored before and after. The views are made once
(``--cache``), so each recipe costs only its training.
"""

import argparse
import json

import numpy as np
import torch

from scattertag.adapt.calibration import sigmoid
from scattertag.adapt.evaluate_labels import load_tagger
from scattertag.adapt.exposure import resample_exposure
from scattertag.adapt.finetune import FinetuneConfig, Training, finetune_model, split_groups
from scattertag.adapt.frames import TensorItems, labelled_frames, labelled_variants
from scattertag.adapt.labels import read_labels
from scattertag.adapt.scoring import score_labelled
from scattertag.data import ShardDataset
from scattertag.evaluate import mean_average_precision, predict_scores
from scattertag.features.views import ViewSpec

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--train", required=True, help="labels table to fine-tune on")
parser.add_argument("--test", required=True, help="labels table of held-out frames, same kind")
parser.add_argument("--data", required=True, help="built dataset of the base model's recipe")
parser.add_argument("--test-shards", type=int, nargs="+", default=[5, 6, 7, 8, 9])
parser.add_argument("--replay-shards", type=int, nargs="+", default=[0, 1, 2, 3, 4])
parser.add_argument("--replay-frames", type=int, default=64)
parser.add_argument("--config", action="append", default=[], help="JSON FinetuneConfig fields")
parser.add_argument("--model", help="base model (default: the shipped tagger)")
parser.add_argument("--cache", help="folder for the labelled frames' views")
parser.add_argument("--threads", type=int, default=1)
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


def scores(tagger) -> tuple[float, float]:
    """(mAP on the kind's test frames, mAP on the synthetic test shards)."""
    probs = sigmoid(predict_scores(tagger, test.dataset(), 32, logits=True)[1])
    kind = score_labelled(test.labels, probs, vocabulary, np.asarray(card.thresholds))["mAP"]
    return kind, mean_average_precision(*predict_scores(tagger, synthetic, 64))


before = scores(model)
print(f"base: test mAP {before[0]:.4f}, synthetic mAP {before[1]:.4f}")
print(f"{'config':<60} {'epoch':>5} {'test mAP':>9} {'synthetic':>9}")
for text in args.config or ["{}"]:
    config = FinetuneConfig(**json.loads(text))
    variants = labelled_variants(
        read_labels(args.train),
        vocabulary,
        spec,
        copies=config.exposure_copies,
        counts_map=resample_exposure,
        seed=config.seed,
        cache=args.cache,
    )
    frames = variants[0]
    held = split_groups(frames.groups, config.val_fraction, config.seed)
    training = Training([v.subset(~held) for v in variants], frames.subset(held), replay)
    tuned, _, log = finetune_model(model, card, training, config)
    after = scores(tuned)
    print(f"{text:<60} {log['best_epoch']:>5} {after[0]:>9.4f} {after[1]:>9.4f}")
