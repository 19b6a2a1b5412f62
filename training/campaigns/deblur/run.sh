#!/usr/bin/env bash
# The deblur campaign (issue: deblur that visibly deblurs), run from the repository root, ONE training
# at a time (each uses both cores):
#   nohup bash training/campaigns/deblur/run.sh > runs/deblur_campaign.log 2>&1 &
# Short trials (800 steps each: preset x precision), then a main run that continues the checkpoint
# of the trial named by WINNER (main-<WINNER>/, to MAIN_STEPS). Every step resumes where it stopped;
# finished trials are skipped. `run.sh trials|main` runs one step; `run.sh ship` re-runs the finished
# main run's command with --export-to (nothing is trained again): the weights go to archives/deblur.
# `run.sh grow` continues the main run's weights in a deeper network (cpu_quarter_deep: the extra
# blocks start as the identity) to GROW_STEPS in grow-quarter_deep/; `run.sh ship-grow` exports it.
set -euo pipefail
DATA="${DATA:-../shared/data/photos ../shared/data/faces ../shared/data/scenes}"
HERE=training/campaigns/deblur
WINNER="${WINNER:-quarter_bf16}"
PY="${PY:-python}"
COMMON=(--data $DATA --batch 8 --val-patches 32 --eval-every 200 --ema 0.998 --channels-last)
declare -A PRESET=([quarter_bf16]=cpu_quarter [quarter_fp32]=cpu_quarter [cpu_bf16]=cpu [gated_bf16]=cpu_gated)

trial() {  # name, args... (skipped once its final export exists)
  local name=$1; shift
  [[ -f "$HERE/trials/$name/deblur.pt" ]] && return
  $PY -m training.train deblur --out "$HERE/trials/$name" --steps 800 --preset "${PRESET[$name]}" "${COMMON[@]}" "$@"
}

trials() {
  trial quarter_bf16 --bf16
  trial quarter_fp32
  trial cpu_bf16 --bf16
  trial gated_bf16 --bf16
}

main() {  # the winner's weights, optimiser, EMA and RNG state, continued to the campaign length
  local out=$HERE/main-$WINNER
  mkdir -p "$out"
  [[ -f "$out/checkpoint.pt" ]] || cp "$HERE/trials/$WINNER/checkpoint.pt" "$HERE/trials/$WINNER/metrics.csv" "$out/"
  $PY -m training.train deblur --out "$out" --steps "${MAIN_STEPS:-6000}" "${COMMON[@]}" --preset "${PRESET[$WINNER]}" \
    --bf16 --eval-every 500 "$@"
}

grow() {  # the main run's EMA weights in 9 blocks instead of 6, a fresh optimiser and schedule
  $PY -m training.train deblur --out "$HERE/grow-quarter_deep" --steps "${GROW_STEPS:-6000}" "${COMMON[@]}" \
    --preset cpu_quarter_deep --bf16 --eval-every 500 --init-from "$HERE/main-$WINNER/checkpoint.pt" "$@"
}

case "${1:-all}" in
  trials) trials ;;
  main) main ;;
  all) trials; main ;;
  ship) main --export-to archives/deblur/deblur.pt ;;
  grow) grow ;;
  ship-grow) grow --export-to archives/deblur/deblur.pt ;;
  *) echo "usage: $0 [all|trials|main|ship|grow|ship-grow]" >&2; exit 2 ;;
esac
