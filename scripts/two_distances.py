"""Tag one simulated sample at two detector distances with a trained model; do the tags agree?

    python scripts/two_distances.py RUN [RUN ...] --experiments 10 --images 5 --factor 1.3

For each test-shard experiment (index = 9 mod 10) of the default simulator, each image is
simulated twice: with the experiment's geometry, and with the detector ``--factor`` times
farther (same sample parameters, same pixels). Frames whose simulator tags differ between
the two (something left the frame) are skipped. Prints, per model, the share of frames
with identical predicted tags and the mean |p1 - p2| over tags.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np


def main() -> None:
    """Parse the arguments, simulate, tag, print one line per model."""
    from scattertag.features.views import ViewMaker
    from scattertag.prediction.pipeline import Predictor
    from scattertag.simulate import Recipe, draw_experiment, simulate_image
    from scattertag.tags import tags_above

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="trained model folders")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--experiments", type=int, default=10)
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--factor", type=float, default=1.3)
    args = parser.parse_args()
    recipe = Recipe(size=args.size)
    models = [Predictor(run) for run in args.runs]
    agree = np.zeros(len(models))
    diff = np.zeros(len(models))
    frames = 0
    for e in range(9, 10 * args.experiments, 10):
        exp = draw_experiment(recipe, args.seed, e)
        far = dataclasses.replace(
            exp,
            geometry=dataclasses.replace(
                exp.geometry, distance=exp.geometry.distance * args.factor
            ),
        )
        for i in range(args.images):
            near_s, far_s = simulate_image(exp, i), simulate_image(far, i)
            if not np.array_equal(near_s.labels, far_s.labels):
                continue
            frames += 1
            for k, model in enumerate(models):
                probs = []
                for x, s in ((exp, near_s), (far, far_s)):
                    image, coeff = ViewMaker(model.view_spec, x.geometry, x.mask)(s.counts, s.mask)
                    probs.append(model.probabilities(image[None], coeff[None])[0])
                tags = [tags_above(model.vocabulary, p, model.thresholds) for p in probs]
                agree[k] += tags[0] == tags[1]
                diff[k] += np.abs(probs[0] - probs[1]).mean()
    print(f"{frames} frames with unchanged simulator tags, detector x{args.factor}")
    for run, a, d in zip(args.runs, agree, diff):
        print(f"{run}: identical tags {a / max(frames, 1):.3f}, mean |dp| {d / max(frames, 1):.4f}")


if __name__ == "__main__":
    main()
