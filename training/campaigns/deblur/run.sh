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
# Real motion (issue 24): `run.sh real-trials` continues the shipped weights on the real-motion mix
# (motion240 windows, camera-path synthesis with sharp exposures, kernel blur), validated on dev-real,
# once as they are and once with Fourier branches (REAL_TRIAL_STEPS each); `run.sh real WINNER=...`
# continues the winning trial to REAL_STEPS in real-<winner>/; `run.sh ship-real` exports it.
# `run.sh gpu-leg` is the same run on a CUDA machine for LEG_MINUTES (default 9), bf16: it checkpoints
# into real-<winner>/ and stops; `run.sh real` on the CPU continues from that checkpoint.
set -euo pipefail
# The data is not in the repository: DATA_ROOT names the folder that holds photos/, faces/, scenes/ (and diverse/, motion240/).
DATA_ROOT="${DATA_ROOT:?set DATA_ROOT to the training data folder (see the README.md beside this script)}"
DATA="${DATA:-$DATA_ROOT/photos $DATA_ROOT/faces $DATA_ROOT/scenes}"
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

REAL_DATA="${REAL_DATA:-$DATA $DATA_ROOT/diverse}"
REAL=(--data $REAL_DATA --motion $DATA_ROOT/motion240 --batch 8 --val-patches 32 --eval-every 200 --ema 0.998
      --channels-last --bf16 --lr 3e-4 --init-from archives/deblur/deblur.pt)
declare -A REAL_PRESET=([plain]=cpu_quarter_deep [fft]=cpu_quarter_deep_fft)

real_trials() {
  for name in plain fft; do
    [[ -f "$HERE/real-trials/$name/deblur.pt" ]] && continue
    $PY -m training.train deblur --out "$HERE/real-trials/$name" --steps "${REAL_TRIAL_STEPS:-600}" \
      --preset "${REAL_PRESET[$name]}" "${REAL[@]}"
  done
}

real() {  # the winning trial's checkpoint continued to REAL_STEPS (the cosine schedule restarts warm)
  local name=${REAL_WINNER:-plain} out=$HERE/real-${REAL_WINNER:-plain}
  mkdir -p "$out"
  [[ -f "$out/checkpoint.pt" ]] || cp "$HERE/real-trials/$name/checkpoint.pt" "$HERE/real-trials/$name/metrics.csv" "$out/"
  $PY -m training.train deblur --out "$out" --steps "${REAL_STEPS:-4000}" --preset "${REAL_PRESET[$name]}" "${REAL[@]}" "$@"
}

case "${1:-all}" in
  trials) trials ;;
  main) main ;;
  all) trials; main ;;
  ship) main --export-to archives/deblur/deblur.pt ;;
  grow) grow ;;
  ship-grow) grow --export-to archives/deblur/deblur.pt ;;
  real-trials) real_trials ;;
  real) real ;;
  ship-real) real --export-to archives/deblur/deblur.pt ;;
  gpu-leg) real --device cuda --max-minutes "${LEG_MINUTES:-9}" ;;
  *) echo "usage: $0 [all|trials|main|ship|grow|ship-grow|real-trials|real|ship-real|gpu-leg]" >&2; exit 2 ;;
esac
