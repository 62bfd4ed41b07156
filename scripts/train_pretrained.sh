#!/usr/bin/env bash
# Reproduce the shipped tagger in src/scattertag/pretrained/ with the project's own commands
# (docs/results.md): the three views trained from scratch on 7,500 frames of the catalogue
# simulator (scripts/train_catalogue_scratch.sh), the joint view then trained on for 3 epochs
# on those frames and 3,000 frames of the reference recipe together (the first simulator's single
# detector), Platt-calibrated on 600 + 600 frames of other seeds, scored on both test shards
# and on ../shared/real-dev (measuring only), and copied into the package.
# Measured 30 Nov 2026 on 2 cores shared with other jobs: builds ~50 min, views ~60 min,
# joint ~10 min, the mixed epochs ~60 min, calibration and scores ~10 min.
set -euo pipefail
OUT=${1:-pretrained-run}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
build() {  # build OUT DETECTORS SEED EXPERIMENTS IMAGES_PER_EXPERIMENT
    scattertag build --out "$1" --size 1000 --experiments "$4" --images-per-experiment "$5" \
        --seed "$3" --input-size 128 --zeros 64 --workers 2 --detectors "$2" --cake-texture 4
}

bash "$(dirname "$0")/train_catalogue_scratch.sh" "$OUT"   # data, cal, image, coeff, joint
build "$OUT/reference" reference 3 120 25
build "$OUT/reference_cal" reference 4 100 6
scattertag train --data "$OUT/data" "$OUT/reference" --view joint --init-model "$OUT/joint" \
    --out "$OUT/mixed" --epochs 3 --lr 3e-4 --trunk-lr-scale 1.0 --threads 2
scattertag calibrate --model "$OUT/mixed" --data "$OUT/cal" "$OUT/reference_cal" \
    --out "$OUT/calibrated" --method platt --test-shards 9 --thresholds tune
scattertag evaluate --data "$OUT/data" --model "$OUT/calibrated" --out "$OUT/test_catalogue"
scattertag evaluate --data "$OUT/reference" --model "$OUT/calibrated" --out "$OUT/test_reference"
if [ -d ../shared/real-dev ]; then
    scattertag evaluate --labels ../shared/real-dev/labels.tsv --centres ../shared/real-dev/centres.tsv \
        --model "$OUT/calibrated" --out "$OUT/realdev"
fi
cp "$OUT/calibrated/model.safetensors" "$OUT/calibrated/model.json" "$(dirname "$0")/../src/scattertag/pretrained/"
