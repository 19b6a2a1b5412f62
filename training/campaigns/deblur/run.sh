#!/usr/bin/env bash
# The deblur campaign (issue: deblur that visibly deblurs), run from the repository root:
#   nohup bash training/campaigns/deblur/run.sh > runs/deblur_campaign.log 2>&1 &
# Three short trials (800 steps each: preset x precision), then the main run, which continues
# the quarter-resolution bf16 trial's checkpoint. Every command resumes where it stopped.
set -euo pipefail
DATA="${DATA:-../shared/data/photos ../shared/data/faces ../shared/data/scenes}"
HERE=training/campaigns/deblur
COMMON=(--data $DATA --batch 8 --val-patches 32 --eval-every 200 --ema 0.998 --channels-last)
trial() {  # name, steps, args... (skipped once its final export exists)
  local name=$1 steps=$2; shift 2
  [[ -f "$HERE/trials/$name/deblur.pt" ]] && return
  python -m training.train deblur --out "$HERE/trials/$name" --steps "$steps" "${COMMON[@]}" "$@"
}
trial quarter_bf16 800 --preset cpu_quarter --bf16
trial quarter_fp32 800 --preset cpu_quarter
trial cpu_bf16 800 --preset cpu --bf16
# Main run: the winning trial's weights, optimiser and RNG state, continued to the campaign length.
mkdir -p "$HERE/main"
[[ -f "$HERE/main/checkpoint.pt" ]] || cp "$HERE/trials/quarter_bf16/checkpoint.pt" "$HERE/trials/quarter_bf16/metrics.csv" "$HERE/main/"
python -m training.train deblur --out "$HERE/main" --steps "${MAIN_STEPS:-6000}" "${COMMON[@]}" --preset cpu_quarter --bf16 \
  --eval-every 500 --export-to archives/deblur/deblur.pt
