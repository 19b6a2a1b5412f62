#!/usr/bin/env bash
# The colour campaign (issue 14: vivid automatic colorization, stronger hints, a retouch that
# generalises), run from the repository root, ONE training at a time (each uses both cores):
#   nohup bash training/campaigns/colour/run.sh > runs/colour_campaign.log 2>&1 &
# Steps: the ab prior of the training photos, the retouch run, three short colorize trials
# (heads: classes alone as in Zhang et al. 2016, classes mixed with regression, regression alone),
# then the main colorize run continuing the trial named by WINNER (default mixed; choose it with
# the benchmark, see README.md), then `warm`: both heads started from the weights shipped before
# issue 14, and `auto`: a network for automatic mode alone (from the warm run), to be served beside the
# old guided one (`split`). Every step resumes where it stopped; finished steps are skipped.
# `retouch-psnr`: the retouch weights continued under a per-photo PSNR loss.
# `run.sh prior|retouch|retouch-psnr|trials|main|warm|auto` runs one step (`all` runs the first five). After the benchmarks (README.md),
# `run.sh ship-retouch` / `run.sh ship-colorize [--mix M --temperature T]` re-run a finished run's
# command with --export-to (nothing is trained again): the weights go to archives/ with TRAINED_WITH.txt.
set -euo pipefail
# The data is not in the repository: DATA_ROOT names the folder that holds photos/, faces/, scenes/ (and diverse/, motion240/).
DATA_ROOT="${DATA_ROOT:?set DATA_ROOT to the training data folder (see the README.md beside this script)}"
DATA="${DATA:-$DATA_ROOT/photos $DATA_ROOT/faces $DATA_ROOT/scenes}"
HERE=training/campaigns/colour
PRIOR=$HERE/ab_prior.json
WINNER="${WINNER:-mixed}"
PY="${PY:-python}"

prior() {
  [[ -f $PRIOR ]] || $PY -m training.campaigns.colour.ab_prior --data $DATA --out $PRIOR
}

# 36,489 parameters on 4,096 pixels a patch: bf16 / channels-last would add rounding, not speed
RETOUCH=(--data $DATA --identity-fraction 0.15 --val-patches 64 --eval-every 500 --ema 0.999)

retouch() {
  $PY -m training.train retouch --out $HERE/retouch --steps "${RETOUCH_STEPS:-12000}" "${RETOUCH[@]}" "$@"
}

retouch_psnr() {  # the retouch run's weights continued under the per-photo PSNR loss (L1 spends them on the
  # strongest edits; the benchmark, and a user with many mildly off photos, counts every photo alike)
  $PY -m training.train retouch --out $HERE/retouch-psnr --steps "${RETOUCH_PSNR_STEPS:-8000}" "${RETOUCH[@]}" \
    --loss psnr --lr 1e-3 --init-from $HERE/retouch/checkpoint.pt "$@"
}

COLORIZE=(--data $DATA --ab-prior $PRIOR --batch 12 --patch 96 --val-patches 32 --channels-last --bf16)
declare -A PRESET=([classes]=small-zhang2016 [mixed]=small-mixed [regression]=small)

trial() {  # name (skipped once its export exists: only the winner's checkpoint is committed)
  [[ -f "$HERE/colorize/trials/$1/colorize.pt" ]] && return
  $PY -m training.train colorize --out "$HERE/colorize/trials/$1" --preset "${PRESET[$1]}" \
    --steps "${TRIAL_STEPS:-1500}" --eval-every 250 --ema 0.998 "${COLORIZE[@]}"
}

trials() {
  prior
  for name in mixed classes regression; do trial $name; done
}

main() {  # the winner's weights, optimiser, EMA and RNG state, continued to the campaign length
  prior
  local out=$HERE/colorize/main
  mkdir -p "$out"
  if [[ ! -f "$out/checkpoint.pt" ]]; then
    cp "$HERE/colorize/trials/$WINNER/checkpoint.pt" "$HERE/colorize/trials/$WINNER/metrics.csv" "$out/"
    echo "$WINNER" > "$out/winner"  # later calls continue the same trial whatever WINNER says
  fi
  local winner; winner=$(cat "$out/winner")
  $PY -m training.train colorize --out "$out" --preset "${PRESET[$winner]}" --steps "${MAIN_STEPS:-20000}" \
    --eval-every 1000 --ema 0.999 "${COLORIZE[@]}" "$@"
}

BEFORE=runs/colorize_before_issue14.pt  # the regression-only weights shipped before issue 14

before() {
  [[ -f $BEFORE ]] || { mkdir -p runs && git show c277980:archives/colorize/colorize.pt > $BEFORE; }
}

warm() {  # both heads; the backbone, FiLM and regression head start from $BEFORE (their hints and reference
  # were the best measured), the class head fresh; a light class loss, so the shared features keep serving the regression
  prior
  before
  $PY -m training.train colorize --out $HERE/colorize/main-mixed-warm --preset small-mixed --init-from $BEFORE \
    --steps "${WARM_STEPS:-16000}" --lr 1e-3 --ce-weight 0.25 --eval-every 1000 --ema 0.999 "${COLORIZE[@]}" "$@"
}

auto() {  # the automatic-mode network, served beside the guided one: never sees hints or a reference
  # (p-automatic 1), both heads, from the warm run's weights (its class head already trained)
  prior
  $PY -m training.train colorize --out $HERE/colorize/auto --preset small-mixed \
    --init-from $HERE/colorize/main-mixed-warm/checkpoint.pt --p-automatic 1.0 --ce-weight 0.5 \
    --steps "${AUTO_STEPS:-16000}" --lr 1e-3 --eval-every 1000 --ema 0.999 "${COLORIZE[@]}" "$@"
}

case "${1:-all}" in
  prior) prior ;;
  retouch) retouch ;;
  retouch-psnr) retouch_psnr ;;
  trials) trials ;;
  main) main ;;
  warm) warm ;;
  auto) auto ;;
  all) prior; retouch; trials; main; warm ;;
  ship-retouch) retouch --export-to archives/retouch/retouch.pt ;;
  ship-retouch-psnr) retouch_psnr --export-to archives/retouch/retouch.pt ;;
  ship-colorize) shift; main "$@" --export-to archives/colorize/colorize.pt ;;
  ship-warm) shift; warm "$@" --export-to archives/colorize/colorize.pt ;;
  # the finished automatic run exported beside the old guided network (guided photos keep its answers):
  split) shift; before; auto --guided-from $BEFORE --guided-preset small "$@" ;;  # into colorize/auto/ only
  ship-split) shift; before; auto --guided-from $BEFORE --guided-preset small "$@" --export-to archives/colorize/colorize.pt ;;
  *) echo "usage: $0 [all|prior|retouch|retouch-psnr|trials|main|warm|auto|split|ship-retouch|ship-retouch-psnr|ship-colorize|ship-warm|ship-split [--mix M] [--temperature T]]" >&2; exit 2 ;;
esac
