#!/usr/bin/env bash
# Reproduce the shipped tagger in src/scattertag/pretrained/ with the project's own commands.
# About 50 min on 2 CPU cores: build 7,500 frames of 1000 x 1000 (cake image view + 64-zero
# Fourier-Bessel matrix), train the ResNet image view and the coefficient view side by side
# (one core each), fine-tune the joint view (its start, a per-tag blend of the two views
# chosen on validation, competes as epoch 0), score all three on the test shard (shard_09)
# and copy the joint weights + card into the package.
# Environment: DETECTORS (default reference), IMAGE_EPOCHS (default 30), SHIP (default 1: copy
# into the package; 0: train and score only, as scripts/train_catalogue_scratch.sh does).
set -euo pipefail
OUT=${1:-pretrained-run}
DETECTORS=${DETECTORS:-reference}
IMAGE_EPOCHS=${IMAGE_EPOCHS:-30}
SHIP=${SHIP:-1}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

scattertag build --out "$OUT/data" --size 1000 --experiments 300 --images-per-experiment 25 \
    --seed 0 --input-size 128 --zeros 64 --workers 2 --detectors "$DETECTORS"
scattertag train --data "$OUT/data" --view image --backbone resnet --out "$OUT/image" --epochs "$IMAGE_EPOCHS" --threads 1 &
scattertag train --data "$OUT/data" --view coeff --out "$OUT/coeff" --epochs 20 --threads 1 &
wait
scattertag train --data "$OUT/data" --view joint --init-image "$OUT/image" --init-coeff "$OUT/coeff" \
    --out "$OUT/joint" --epochs 4 --lr 2e-4 --trunk-lr-scale 0.1 --threads 2
for view in image coeff joint; do scattertag evaluate --data "$OUT/data" --model "$OUT/$view"; done
[ "$SHIP" = 1 ] || exit 0
cp "$OUT/joint/model.safetensors" "$OUT/joint/model.json" "$(dirname "$0")/../src/scattertag/pretrained/"
