"""How well the cake's texture channel (ViewSpec.cake_texture) tells textured rings, untrained.

1. **Ring frames of a test shard**: the frames of shard ``--shard`` of a built dataset
   (``--data``, e.g. the catalogue build of scripts/train_pretrained.sh) whose labels say
   Ring are simulated again from the manifest's recipe and seed, and their cake with the
   texture channel (``--subcells``) made. Per frame one statistic: over the cake columns with
   at least 16 cells of valid fraction > 0.5, the largest median of the texture channel over
   those cells (a ring all round the azimuth). Printed: its average precision for the
   Polycrystalline tag among the ring frames, and its quantiles by what the simulator drew
   (textured rings, spotty "large grains" rings, speckled halos, anisotropic rings, other),
   and on every ``--non-ring-every``-th frame without a ring, for comparison.
2. **Controls**: Poisson frames of 1000 x 1000 (a sharp smooth ring, a SAXS power law, a
   flat field from 0.001 to 1e8 counts, a smooth ring read with gains 0.3-10 ADU a photon)
   and the frames of ``--real`` (``../shared/real-dev``: files and checked centres in
   ``centres.tsv``, tags in ``labels.tsv``; measuring only): the same statistic, the share of
   cells above 0.3 and the 99th percentile of the channel.

    python benchmarks/texture_ap.py --data /work/data/catalogue-v2
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

REAL_DEV = Path(__file__).resolve().parents[2] / "shared" / "real-dev"
GROUPS = ("polycrystalline", "large grains", "speckle", "anisotropic", "other")


def frame_statistic(image: np.ndarray, channel: int, min_cells: int = 16) -> float:
    """Largest median of the texture channel over the valid cells of a cake column."""
    ok = image[2] > 0.5
    columns = np.flatnonzero(ok.sum(axis=0) >= min_cells)
    if not len(columns):
        return 0.0
    return max(float(np.median(image[channel][ok[:, c], c])) for c in columns)


def summary(image: np.ndarray, channel: int) -> str:
    """The frame statistic, the share of valid cells above 0.3 and the channel's 99th pc."""
    texture = image[channel][image[2] > 0.5]
    return (
        f"statistic {frame_statistic(image, channel):.3f}  cells > 0.3 "
        f"{100 * np.mean(texture > 0.3):5.2f} %  99th pc {np.quantile(texture, 0.99):.3f}"
    )


def group_of(keys: dict) -> str:
    """What the simulator drew that makes a ring frame grainy, in the order of GROUPS."""
    text = " ".join(keys)
    for group in GROUPS[:-1]:
        if group in text:
            return group
    return "other"


def ring_frames(data: Path, shard: int, spec, non_ring_every: int) -> None:
    """Part 1: the statistic's AP on the ring frames of the shard, by group, and the
    statistic on a share of the frames without a ring."""
    import h5py

    from scattertag.evaluate import average_precision
    from scattertag.features.views import ViewMaker
    from scattertag.simulate import draw_experiment, simulate_image
    from scattertag.simulate.recipe import Recipe

    manifest = json.loads((data / "manifest.json").read_text())
    recipe, vocabulary = Recipe.from_dict(manifest["recipe"]), manifest["vocabulary"]
    with h5py.File(data / manifest["shards"][shard]["file"]) as f:
        labels, keys = f["labels"][:], [json.loads(k) for k in f["keys"][:]]
        experiments, images = f["experiment"][:], f["image_index"][:]
    ring, poly = vocabulary.index("Ring"), vocabulary.index("Polycrystalline")
    frames = np.flatnonzero(labels[:, ring])
    others = np.flatnonzero(labels[:, ring] == 0)[::non_ring_every]
    stats, maker, current = [], None, None
    for i in tqdm(np.concatenate([frames, others]), desc="frames"):
        if experiments[i] != current:
            current = experiments[i]
            exp = draw_experiment(recipe, manifest["seed"], int(current))
            maker = ViewMaker(spec, exp.geometry, exp.mask)
        sample = simulate_image(exp, int(images[i]))
        stats.append(frame_statistic(maker.image(sample.counts, sample.mask), 4))
    y, s = labels[frames, poly], np.array(stats[: len(frames)])
    print(
        f"{len(frames)} ring frames of shard {shard}, {int(y.sum())} Polycrystalline: "
        f"AP of the texture statistic {average_precision(y, s):.3f}"
    )
    groups = np.array([group_of(keys[i]) for i in frames])
    for group in GROUPS:
        part = s[groups == group]
        if len(part):
            q = np.quantile(part, [0.1, 0.5, 0.9])
            print(f"  {group:16s} {len(part):4d} frames: 10/50/90th pc {np.round(q, 3)}")
    part = np.array(stats[len(frames) :])
    if len(part):
        q = np.quantile(part, [0.1, 0.5, 0.9])
        print(
            f"  {'no ring':16s} {len(part):4d} frames: 10/50/90th pc {np.round(q, 3)}, "
            f"max {part.max():.3f}"
        )


def controls(spec, real: Path) -> None:
    """Part 2: synthetic Poisson frames and the real frames."""
    from scattertag.features.views import ViewMaker
    from scattertag.geometry import Geometry
    from scattertag.io.readers import read_frames

    rng = np.random.default_rng(0)
    geometry = Geometry((1000, 1000), (431.0, 577.0))
    maker = ViewMaker(spec, geometry)
    y, x = np.indices(geometry.shape)
    r = np.hypot(x - geometry.beam_center[0], y - geometry.beam_center[1])
    print("Poisson frames, 1000 x 1000:")
    for peak in (1.0, 1e2, 1e4, 1e6, 1e8):
        patterns = {
            "sharp ring (1 % FWHM)": 0.5 + peak * np.exp(-0.5 * ((r - 300) / 1.26) ** 2),
            "SAXS power law": peak * (1 + (r / 20) ** 2) ** -2,
            "flat field": np.full(geometry.shape, peak),
        }
        for name, lam in patterns.items():
            image = maker.image(rng.poisson(lam).astype(np.float64))
            print(f"  {name:22s} peak {peak:7.0e}: {summary(image, 4)}")
    for level in (1e-3, 1e-2, 0.1):
        image = maker.image(rng.poisson(np.full(geometry.shape, level)).astype(np.float64))
        print(f"  flat field, mean {level:g} counts: {summary(image, 4)}")
    smooth = 20 + 1e3 * np.exp(-0.5 * ((r - 300) / 3.0) ** 2)
    for gain in (0.3, 3.0, 10.0):
        image = maker.image(gain * rng.poisson(smooth).astype(np.float64))
        print(f"  smooth ring, gain {gain:4.1f} ADU a photon: {summary(image, 4)}")
    if not (real / "centres.tsv").is_file():
        print(f"{real}: no centres.tsv, real frames skipped")
        return
    with open(real / "labels.tsv") as f:
        tags = {row["local_path"]: row for row in csv.DictReader(f, delimiter="\t")}
    print(f"real frames ({real}; checked centres; Ring / Polycrystalline tags by eye):")
    with open(real / "centres.tsv") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            frame = next(iter(read_frames(real / row["local_path"])))
            centre = (float(row["beam_x"]), float(row["beam_y"]))
            maker = ViewMaker(spec, Geometry(frame.counts.shape, centre), frame.valid)
            tag = tags.get(row["local_path"], {})
            print(
                f"  {row['local_path'][:44]:44s} {tag.get('Ring') or '-'} "
                f"{tag.get('Polycrystalline') or '-'}  {summary(maker.image(frame.counts), 4)}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a built dataset (part 1 skipped without)")
    parser.add_argument("--shard", type=int, default=9)
    parser.add_argument("--subcells", type=int, default=4)
    parser.add_argument("--non-ring-every", type=int, default=4)
    parser.add_argument("--real", type=Path, default=REAL_DEV)
    args = parser.parse_args()

    from scattertag.features.views import ViewSpec

    if args.data is not None:
        manifest = json.loads((args.data / "manifest.json").read_text())
        base = ViewSpec.from_dict(manifest["view_spec"])
    else:
        base = ViewSpec(input_size=128, zeros=64)
    spec = dataclasses.replace(base, image_space="cake", cake_texture=args.subcells)
    if args.data is not None:
        ring_frames(args.data, args.shard, spec, args.non_ring_every)
    controls(spec, args.real)


if __name__ == "__main__":
    main()
