"""Bootstrap noise of mAP on labelled frames: whole groups (experiments, samples) resampled.

    python scripts/bootstrap_map.py --labels gis_test/labels.tsv \\
        eval_base/eval_labels.json eval_ft/eval_labels.json --draws 1000

Each draw takes as many groups as the table has, with replacement, and scores every frame of
each drawn group (``scattertag.adapt.labels`` groups: the ``group`` column, else the first
word of the file name). Prints, per ``scattertag evaluate --labels`` result, its mAP and the
standard deviation over the draws; for every result after the first, its mAP difference to
the first on all frames, then the paired difference over the same draws: mean, s.d.,
2.5-97.5 % interval and the share of draws above 0.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from scattertag.adapt.labels import read_labels
from scattertag.evaluate import mean_average_precision

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--labels", required=True, help="labels table the results were scored on")
parser.add_argument("results", nargs="+", help="eval_labels.json files (first: the reference)")
parser.add_argument("--draws", type=int, default=1000)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

table = read_labels(args.labels)
row_of = {item.source: i for i, item in enumerate(table.items)}
results = [json.loads(Path(path).read_text()) for path in args.results]
frames = results[0]["frames"]
for path, result in zip(args.results, results, strict=True):
    if result["frames"] != frames:
        raise SystemExit(f"{path}: not the frames of {args.results[0]}")
missing = [f for f in frames if f not in row_of]
if missing:
    raise SystemExit(f"{args.labels}: no row for {len(missing)} scored frame(s): {missing[:3]}")
vocabulary = list(results[0]["scores"][frames[0]])
labels = table.aligned(vocabulary)[[row_of[f] for f in frames]]
scores = [np.array([[r["scores"][f][t] for t in vocabulary] for f in frames]) for r in results]
groups = np.array([table.groups[row_of[f]] for f in frames])
names = np.unique(groups)
members = [np.flatnonzero(groups == g) for g in names]

rng = np.random.default_rng(args.seed)
draws = np.empty((args.draws, len(results)))
for d in range(args.draws):
    rows = np.concatenate([members[g] for g in rng.integers(len(names), size=len(names))])
    draws[d] = [mean_average_precision(labels[rows], s[rows]) for s in scores]

print(f"{len(frames)} frames in {len(names)} groups, {args.draws} draws")
for path, s, column in zip(args.results, scores, draws.T, strict=True):
    print(f"{path}: mAP {mean_average_precision(labels, s):.4f}, s.d. {np.std(column):.4f}")
first = mean_average_precision(labels, scores[0])
for path, s, column in zip(args.results[1:], scores[1:], draws[:, 1:].T, strict=True):
    diff = column - draws[:, 0]
    low, high = np.percentile(diff, [2.5, 97.5])
    print(
        f"{path} - first: {mean_average_precision(labels, s) - first:+.4f}; draws: mean "
        f"{np.mean(diff):+.4f}, s.d. {np.std(diff):.4f}, 95 % [{low:+.4f}, {high:+.4f}], "
        f"above 0 in {np.mean(diff > 0):.1%}"
    )
