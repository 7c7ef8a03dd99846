#!/usr/bin/env bash
# Reproduce the shipped small model (doorface's own student, not the default) edge/models/doorface-small.{tflite,json} from ../shared/data:
# train (semi-hard triplets + centred dlib teacher); quantise to int8; fit the operating point
# on the int8 model (`converter operating-point`: cohort of training identities, threshold
# loosest with FAR <= 1% and confidence on the identities training held out, flip-fused as the
# edge embeds), and score the result on the never-trained-on pairsDevTest. About 100 minutes on
# a 2-core x86_64 machine.
#
#   bash scripts/make_small_model.sh            # writes runs/default and edge/models
#   STEPS=post bash scripts/make_small_model.sh # only the steps after training
set -euo pipefail
cd "$(dirname "$0")/.."

DATA="${DATA:-../shared/data}"
OUT="${OUT:-runs/default}"
MINUTES="${MINUTES:-85}"
STEPS="${STEPS:-all}"
MODEL_OUT="${MODEL_OUT:-edge/models/doorface-small.tflite}"
PY=.venv/bin/python
[ -x "$PY" ] || { python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev,teacher]'; }

if [ "$STEPS" = all ]; then
  .venv/bin/trainer train "$DATA/lfw" "$DATA/celeba-subset" --out "$OUT" \
    --input-size 64 --activation relu --loss semihard --teacher dlib --teacher-minutes 0 \
    --time-budget "$MINUTES" --threads 2 --seed 0 \
    --exclude-pairs "$DATA/lfw-view1/pairsDevTest.txt" \
    --monitor-pairs "$DATA/lfw-view1/pairsDevTest.txt" --monitor-root "$DATA/lfw"
fi
.venv/bin/converter quantize "$OUT/encoder.keras" --calibration "$DATA/celeba-subset" \
  --out "$MODEL_OUT" --per-tensor \
  --pairs "$DATA/lfw-view1/pairsDevTest.txt" --images "$DATA/lfw"
# threshold, confidence and cohort measured on the int8 model as the edge runs it, on the same
# held-out identities (same data, exclusions, seed and split as the training run above)
.venv/bin/converter operating-point "$MODEL_OUT" "$DATA/lfw" "$DATA/celeba-subset" \
  --exclude-pairs "$DATA/lfw-view1/pairsDevTest.txt" --seed 0
.venv/bin/trainer evaluate --model "$MODEL_OUT" --images "$DATA/lfw" \
  --pairs "$DATA/lfw-view1/pairsDevTest.txt" --threshold-pairs "$DATA/lfw-view1/pairsDevTrain.txt" \
  --json "$OUT/devtest-int8.json" --plots "$OUT/devtest-int8"
