"""Write simulated frames as a labelled file set (``.npy`` files + labels.tsv).

    python scripts/simulate_labelled.py --out gis_train --gisaxs 1.0 --experiments 0 10
    python scripts/simulate_labelled.py --out gis_test --gisaxs 1.0 --experiments 100 120
    python scripts/simulate_labelled.py --out strip --detectors "Pilatus 300K-W" --images 1
    python scripts/simulate_labelled.py --out rods --beamstops rod paddle disk --images 1
    python scripts/simulate_labelled.py --out flat_v1 --detectors "GE 41RT" --first-version
    python scripts/simulate_labelled.py --out powder --first-version --term powder=0.6

``--first-version`` keeps the samples, artefacts and beamstops of the first simulator (those
the shipped tagger was trained on) with any detector, so one thing at a time is left out:
the detector alone, or (``--term NAME=P``) one new sample type. ``--setup DISTANCE ENERGY``
fixes a catalogue detector's distance and energy, as at one beamline.

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
from scattertag.simulate.experiment import SETUPS
from scattertag.simulate.recipe import (
    DEFAULT_BEAMSTOPS,
    DEFAULT_TERMS,
    V1_BEAMSTOPS,
    V1_TERMS,
    _v1,
)

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
parser.add_argument(
    "--first-version",
    action="store_true",
    help="samples, artefacts and beamstops of the first simulator (the shipped tagger's)",
)
parser.add_argument(
    "--term",
    action="append",
    default=[],
    metavar="NAME=P",
    help=f"probability of a sample term (repeatable); names: {', '.join(DEFAULT_TERMS)}",
)
parser.add_argument(
    "--setup",
    type=float,
    nargs=2,
    metavar=("DISTANCE_M", "ENERGY_KEV"),
    help="one fixed setup for every catalogue experiment (one beamline's instrument), "
    "instead of distances and energies drawn per experiment",
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
if args.setup:
    distance, energy = args.setup
    for setup in SETUPS:  # the draw ranges of every setup shrink to one point
        SETUPS[setup] = {"distance": (distance, distance), "energy": (energy, energy)}
terms = _v1(DEFAULT_TERMS, V1_TERMS) if args.first_version else {}
for text in args.term:
    name, _, value = text.partition("=")
    if name not in DEFAULT_TERMS:
        parser.error(f"--term {text!r}: unknown term {name!r}")
    terms[name] = float(value)
stops = _v1(DEFAULT_BEAMSTOPS, V1_BEAMSTOPS) if args.first_version else {}
if args.beamstops:
    stops = {k: float(k in args.beamstops) for k in DEFAULT_BEAMSTOPS}
recipe = Recipe(
    size=args.size,
    gisaxs_fraction=args.gisaxs,
    detectors=args.detectors
    if args.detectors in ("reference", "catalogue")
    else {args.detectors: 1},
    beamstops=stops,
    terms=terms,
)
path = write_labelled_set(
    args.out, recipe, args.seed, range(*args.experiments), args.images, vocabulary, progress=True
)
print(f"wrote {path}")
