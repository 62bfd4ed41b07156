#!/usr/bin/env bash
# Issue 12's from-scratch candidate (docs/results_real_dev.md, "From scratch on the catalogue"),
# the first stage of scripts/train_pretrained.sh: scripts/train_views.sh on the catalogue
# simulator (real detectors, SAXS/WAXS, tilted WAXS detectors, integrating detectors' pedestals, the beamstop zoo and artefacts of
# docs/simulator.md), 24 image epochs, Platt-calibrated on 600 frames of another seed, scored
# on the catalogue test shard and on ../shared/real-dev. Measured 30 Nov 2026: build 36 min
# (one worker at nice 19 beside other jobs), image + coefficient views side by side ~50 min,
# joint 4 epochs ~8 min, calibration and scores ~4 min.
set -euo pipefail
OUT=${1:-catalogue-scratch}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

DETECTORS=catalogue SEED=0 IMAGE_EPOCHS=24 bash "$(dirname "$0")/train_views.sh" "$OUT"
scattertag build --out "$OUT/cal" --size 1000 --experiments 100 --images-per-experiment 6 \
    --seed 1 --input-size 128 --zeros 64 --workers 2 --detectors catalogue --cake-texture 4
scattertag calibrate --model "$OUT/joint" --data "$OUT/cal" --out "$OUT/calibrated" \
    --method platt --test-shards 9 --thresholds tune
scattertag evaluate --data "$OUT/data" --model "$OUT/calibrated" --out "$OUT/test_calibrated"
if [ -d ../shared/real-dev ]; then
    scattertag evaluate --labels ../shared/real-dev/labels.tsv --centres ../shared/real-dev/centres.tsv \
        --model "$OUT/calibrated" --out "$OUT/realdev_calibrated"
fi
