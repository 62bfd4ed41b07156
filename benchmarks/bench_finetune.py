"""Fine-tuning cost on N labelled frames: reading + views, replay, training per --update.

    python benchmarks/bench_finetune.py --labels gis_train/labels.tsv --replay DATASET --threads 2

Times each phase of ``scattertag finetune`` (the labelled frames' views with their exposure
variants, the replay frames, then training with early stopping for each ``--update``),
``--repeats`` times, and prints the medians side by side with their ratio to the budget
(5 minutes for 50 frames on 2 cores). CPU seconds (this process, all threads) are printed
beside the wall-clock ones, and the load average before and after, so a figure measured on
a shared machine can be read for what it is.
"""

import argparse
import os
import statistics
import time

import torch

from scattertag.adapt.command import load_replay
from scattertag.adapt.evaluate_labels import load_tagger
from scattertag.adapt.exposure import resample_exposure
from scattertag.adapt.finetune import (
    UPDATES,
    FinetuneConfig,
    Training,
    finetune_model,
    split_groups,
)
from scattertag.adapt.frames import labelled_variants
from scattertag.adapt.labels import read_labels
from scattertag.features.views import ViewSpec

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--labels", required=True)
parser.add_argument("--centres")
parser.add_argument("--model", help="base model (default: the shipped tagger)")
parser.add_argument("--replay", default="simulate", help="'simulate', a dataset folder or 'none'")
parser.add_argument("--replay-frames", type=int, default=64)
parser.add_argument("--frames", type=int, default=50, help="use the first N rows")
parser.add_argument("--updates", nargs="+", default=list(UPDATES), choices=UPDATES)
parser.add_argument("--repeats", type=int, default=1)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--budget-s", type=float, default=300.0)
args = parser.parse_args()
torch.set_num_threads(args.threads)

model, card = load_tagger(args.model)
config = FinetuneConfig()
load_before = os.getloadavg()
times: dict[str, list[float]] = {"views": [], "replay": []}
cpu: dict[str, list[float]] = {"views": [], "replay": []}
for _ in range(args.repeats):
    start, start_cpu = time.perf_counter(), time.process_time()
    table = read_labels(args.labels, args.centres).first(args.frames)
    variants = labelled_variants(
        table,
        list(card.vocabulary),
        ViewSpec.from_dict(card.view_spec),
        copies=config.exposure_copies,
        counts_map=resample_exposure,
    )
    times["views"].append(time.perf_counter() - start)
    cpu["views"].append(time.process_time() - start_cpu)
    start, start_cpu = time.perf_counter(), time.process_time()
    replay = load_replay(args.replay, card, args.replay_frames, 0, False)
    times["replay"].append(time.perf_counter() - start)
    cpu["replay"].append(time.process_time() - start_cpu)

frames = variants[0]
held = split_groups(frames.groups, config.val_fraction, config.seed)
training = Training([v.subset(~held) for v in variants], frames.subset(held), replay)
epochs = {}
for update in args.updates:
    times[update], cpu[update] = [], []
    for _ in range(args.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        _, _, log = finetune_model(model, card, training, FinetuneConfig(update=update))
        times[update].append(time.perf_counter() - start)
        cpu[update].append(time.process_time() - start_cpu)
        epochs[update] = log["epochs_run"]

median = {k: statistics.median(v) for k, v in times.items()}
median_cpu = {k: statistics.median(v) for k, v in cpu.items()}
prepare = median["views"] + median["replay"]
prepare_cpu = median_cpu["views"] + median_cpu["replay"]
print(
    f"{len(frames)} labelled frames ({int((~held).sum())} train, {int(held.sum())} held out), "
    f"{0 if replay is None else len(replay)} replay frames ({args.replay}), "
    f"{args.threads} threads, median of {args.repeats}"
)
print(f"{'phase':<28} {'seconds':>8} {'/ budget':>9} {'CPU s':>8}")
for name in ("views", "replay"):
    print(
        f"{name:<28} {median[name]:>8.1f} {median[name] / args.budget_s:>9.2f} "
        f"{median_cpu[name]:>8.1f}"
    )
for update in args.updates:
    total = prepare + median[update]
    label = f"train --update {update} ({epochs[update]} ep)"
    print(
        f"{label:<28} {median[update]:>8.1f} {median[update] / args.budget_s:>9.2f} "
        f"{median_cpu[update]:>8.1f}"
    )
    print(
        f"{'  total':<28} {total:>8.1f} {total / args.budget_s:>9.2f} "
        f"{prepare_cpu + median_cpu[update]:>8.1f}"
    )
load_after = os.getloadavg()
print(
    f"load average (1, 5, 15 min) before {', '.join(f'{x:.1f}' for x in load_before)}; "
    f"after {', '.join(f'{x:.1f}' for x in load_after)} ({os.cpu_count()} CPUs)"
)
within = all(prepare + median[u] <= args.budget_s for u in args.updates)
print(f"budget {args.budget_s:.0f} s; every update within it: {within}")
