#!/usr/bin/env bash
# Build one dataset and train the three views on it with the project's own commands: the
# ResNet cake view and the coefficient view side by side (one core each), then the joint view
# (its start, a per-tag blend of the two views chosen on validation, competes as epoch 0);
# all three scored on the test shard (shard_09). The first stage of scripts/train_pretrained.sh.
# Environment: DETECTORS (default catalogue), SEED (default 0), IMAGE_EPOCHS (default 24),
# CAKE_TEXTURE (default 4: the cake's texture channel, docs/results.md; 0: none).
set -euo pipefail
OUT=${1:-views-run}
DETECTORS=${DETECTORS:-catalogue}
SEED=${SEED:-0}
IMAGE_EPOCHS=${IMAGE_EPOCHS:-24}
CAKE_TEXTURE=${CAKE_TEXTURE:-4}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

scattertag build --out "$OUT/data" --size 1000 --experiments 300 --images-per-experiment 25 \
    --seed "$SEED" --input-size 128 --zeros 64 --workers 2 --detectors "$DETECTORS" --cake-texture "$CAKE_TEXTURE"
scattertag train --data "$OUT/data" --view image --backbone resnet --out "$OUT/image" --epochs "$IMAGE_EPOCHS" --threads 1 &
scattertag train --data "$OUT/data" --view coeff --out "$OUT/coeff" --epochs 20 --threads 1 &
wait
scattertag train --data "$OUT/data" --view joint --init-image "$OUT/image" --init-coeff "$OUT/coeff" \
    --out "$OUT/joint" --epochs 4 --lr 2e-4 --trunk-lr-scale 0.1 --threads 2
for view in image coeff joint; do scattertag evaluate --data "$OUT/data" --model "$OUT/$view"; done
