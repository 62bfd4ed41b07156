#!/usr/bin/env bash
# The catalogue-simulator candidate of issue 12 (measured in docs/results_real_dev.md, not
# shipped): the shipped tagger trained on for 4 epochs on 7,500 frames of the catalogue
# simulator (real detectors, SAXS and WAXS setups, new beamstops and artefacts), Platt-
# calibrated on 540 frames of another seed, scored on the catalogue test shard and on
# ../shared/real-dev. About 60 min of build and 40 min of training on 2 free cores.
set -euo pipefail
OUT=${1:-catalogue-run}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
SHIPPED=$(python -c "from scattertag.models import pretrained_dir; print(pretrained_dir())")

scattertag build --out "$OUT/data" --size 1000 --experiments 300 --images-per-experiment 25 \
    --seed 0 --input-size 128 --zeros 64 --workers 2 --detectors catalogue
scattertag build --out "$OUT/cal" --size 1000 --experiments 100 --images-per-experiment 6 \
    --seed 1 --input-size 128 --zeros 64 --workers 2 --detectors catalogue
scattertag train --data "$OUT/data" --view joint --init-model "$SHIPPED" --out "$OUT/joint" \
    --epochs 4 --lr 3e-4 --trunk-lr-scale 1.0 --threads 2
scattertag calibrate --model "$OUT/joint" --data "$OUT/cal" --out "$OUT/calibrated" \
    --method platt --test-shards 9 --thresholds tune
for model in "$SHIPPED" "$OUT/calibrated"; do
    name=$(basename "$model")
    scattertag evaluate --data "$OUT/data" --model "$model" --out "$OUT/test_$name"
    scattertag evaluate --labels ../shared/real-dev/labels.tsv \
        --centres ../shared/real-dev/centres.tsv --model "$model" --out "$OUT/realdev_$name"
done
