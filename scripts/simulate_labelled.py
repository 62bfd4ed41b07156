"""Write simulated frames as a labelled file set (``.npy`` files + labels.tsv).

    python scripts/simulate_labelled.py --out gis_train --gisaxs 1.0 --experiments 0 10
    python scripts/simulate_labelled.py --out gis_test --gisaxs 1.0 --experiments 100 120
    python scripts/simulate_labelled.py --out strip --detectors "Pilatus 300K-W" --images 1
    python scripts/simulate_labelled.py --out rods --beamstops rod paddle disk --images 1

Tags: those of the shipped tagger's vocabulary that the recipe also has (the grazing-incidence
tags, which the shipped tagger does not know, are left out). Used to measure fine-tuning on
a kind of frame the base model never saw (docs/adapt.md).
"""

import argparse

from scattertag.adapt.synthetic import write_labelled_set
from scattertag.models.card import ModelCard
from scattertag.models.io import pretrained_dir
from scattertag.simulate import Recipe
from scattertag.simulate.beamstops import BEAMSTOPS
from scattertag.simulate.catalogue import CATALOGUE
from scattertag.simulate.recipe import DEFAULT_BEAMSTOPS

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", required=True)
parser.add_argument("--size", type=int, default=1000, help="frame side (default 1000)")
parser.add_argument("--gisaxs", type=float, default=0.0, help="fraction of GISAXS experiments")
parser.add_argument(
    "--detectors",
    default="reference",
    help="Recipe.detectors: 'reference' (the shipped tagger's training detector, default), "
    "'catalogue', or one catalogue detector's name (simulate/detectors.tsv)",
)
parser.add_argument(
    "--beamstops",
    nargs="+",
    choices=BEAMSTOPS,
    help="draw only these beamstop types (equal weights; default: the recipe's mix)",
)
parser.add_argument("--seed", type=int, default=7)
parser.add_argument("--experiments", type=int, nargs=2, metavar=("FIRST", "STOP"), default=(0, 10))
parser.add_argument("--images", type=int, default=5, help="images per experiment")
args = parser.parse_args()
vocabulary = ModelCard.read(pretrained_dir()).vocabulary
if args.detectors not in ("reference", "catalogue") and args.detectors not in CATALOGUE:
    parser.error(
        f"--detectors {args.detectors!r}: not 'reference', 'catalogue' or a catalogue name"
    )
recipe = Recipe(
    size=args.size,
    gisaxs_fraction=args.gisaxs,
    detectors=args.detectors
    if args.detectors in ("reference", "catalogue")
    else {args.detectors: 1},
    beamstops={k: float(k in args.beamstops) for k in DEFAULT_BEAMSTOPS} if args.beamstops else {},
)
path = write_labelled_set(
    args.out, recipe, args.seed, range(*args.experiments), args.images, vocabulary, progress=True
)
print(f"wrote {path}")
