#!/usr/bin/env bash
# Reproduce the shipped small model edge/models/doorface-small.{tflite,json,cohort.npy} from
# ../shared/data: dlib's ResNet pruned by channel (`trainer prune-dlib`: 0.76 M of its 5.65 M
# parameters, a 7x7/4 stem) and distilled back onto dlib's embeddings, with dlib's target
# computed anew for each moved crop and for blends of two faces; quantised to full-integer
# int8; its operating point fitted on the identities the trainer holds out (seed 0), on
# doorface's score scale (--rescale), then scored on the never-trained-on pairsDevTest.
# Four stages: 105 minutes of distillation (OUT), then 90 more from its end with the
# neighbourhood term (--bank-weight 0.2, half the peak rate; OUT/bank), then 95 more with a
# stronger term (--bank-weight 0.3, lr 2e-4; OUT/bank2), then 95 more with it stronger still
# (--bank-weight 0.5; OUT/bank3), as the shipped file was made on 2026-12-07/08 (its later
# stages started from the earlier stage's int8 file, see docs/MODEL.md). About 400 minutes on a
# 2-core x86_64 machine with int8 dot-product instructions (AVX-VNNI / AVX-512 VNNI: 230-380
# faces/s); several times longer without them (the moved crops' targets come from int8 dlib).
# A killed run goes on with RESUME=1 (same OUT); an earlier stage whose encoder.keras is
# written is done and skipped.
#
#   bash scripts/make_small_model.sh            # writes runs/small and edge/models
#   STEPS=post bash scripts/make_small_model.sh # only the steps after training
set -euo pipefail
cd "$(dirname "$0")/.."

DATA="${DATA:-../shared/data}"
OUT="${OUT:-runs/small}"
MINUTES="${MINUTES:-105}"
BANK_MINUTES="${BANK_MINUTES:-90}"
BANK2_MINUTES="${BANK2_MINUTES:-95}"
BANK3_MINUTES="${BANK3_MINUTES:-95}"
STEPS="${STEPS:-all}"
MODEL_OUT="${MODEL_OUT:-edge/models/doorface-small.tflite}"
RESUME_FLAG=()
[ "${RESUME:-0}" = 1 ] && RESUME_FLAG=(--resume)
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev,teacher]'; }

# one stage of distillation into $1 for $2 minutes, the recipe every stage shares; the rest of
# the arguments are the stage's own
prune_dlib() {
  local out="$1" minutes="$2"
  shift 2
  .venv/bin/trainer prune-dlib "$DATA/lfw" "$DATA/celeba-subset" --out "$out" \
    --exclude-pairs "$DATA/lfw-view1/pairsDevTest.txt" --moved-targets --mix-share 0.3 \
    --time-budget "$minutes" --seed 0 "$@" "${RESUME_FLAG[@]}"
}

if [ "$STEPS" = all ]; then
  # an earlier stage is done when its encoder is written
  [ -f "$OUT/encoder.keras" ] || prune_dlib "$OUT" "$MINUTES"
  [ -f "$OUT/bank/encoder.keras" ] ||
    prune_dlib "$OUT/bank" "$BANK_MINUTES" --bank-weight 0.2 --lr 2.5e-4 \
      --init-from "$OUT/encoder.keras"
  [ -f "$OUT/bank2/encoder.keras" ] ||
    prune_dlib "$OUT/bank2" "$BANK2_MINUTES" --bank-weight 0.3 --lr 2e-4 \
      --init-from "$OUT/bank/encoder.keras"
  prune_dlib "$OUT/bank3" "$BANK3_MINUTES" --bank-weight 0.5 --lr 2e-4 \
    --init-from "$OUT/bank2/encoder.keras"
fi
# --threshold is provisional (operating-point replaces it): a threshold is never fitted on the
# pairs a model is scored on
.venv/bin/converter quantize "$OUT/bank3/encoder.keras" --calibration "$DATA/celeba-subset" \
  --out "$MODEL_OUT" --threshold 0.9 \
  --pairs "$DATA/lfw-view1/pairsDevTest.txt" --images "$DATA/lfw" --quiet
.venv/bin/converter operating-point "$MODEL_OUT" "$DATA/lfw" "$DATA/celeba-subset" \
  --exclude-pairs "$DATA/lfw-view1/pairsDevTest.txt" --seed 0 --rescale --quiet
.venv/bin/trainer evaluate --model "$MODEL_OUT" --images "$DATA/lfw" \
  --pairs "$DATA/lfw-view1/pairsDevTest.txt" --threshold-pairs "$DATA/lfw-view1/pairsDevTrain.txt" \
  --json "$OUT/devtest-int8.json"
