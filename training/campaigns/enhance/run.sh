#!/usr/bin/env bash
# The night-flare campaign (issue 28: street-light starbursts, glow and ghosts), run from the repository
# root, ONE training at a time (it uses both cores):
#   DATA_ROOT=../shared/data nohup bash training/campaigns/enhance/run.sh night-flare > runs/enhance_campaign.log 2>&1 &
# `night-flare`: the shipped cpu FiLM² weights fine-tuned on a mix of night flare (training/degradations/flare.py,
# FLARE_SHARE of the patches) and today's daylight glare, 20% clean patches. Resumes where it stopped.
# `ship`: re-run the finished run's command with --export-to (nothing is trained again).
set -euo pipefail
# The data is not in the repository: DATA_ROOT names the folder that holds photos/, faces/, scenes/, diverse/.
DATA_ROOT="${DATA_ROOT:?set DATA_ROOT to the training data folder (see the README.md beside this script)}"
DATA="${DATA:-$DATA_ROOT/photos $DATA_ROOT/faces $DATA_ROOT/scenes $DATA_ROOT/diverse}"
HERE=training/campaigns/enhance
PY="${PY:-python}"
NIGHT=(--data $DATA --batch 8 --patch 256 --lr 5e-4 --eval-every 250 --val-patches 32 --threads 2
       --flare-share "${FLARE_SHARE:-0.6}" --clean-fraction 0.2 --out $HERE/night-flare)

night_flare() {
  # --init-from counts only when the run folder has no checkpoint yet (a resume keeps its own weights).
  $PY -m training.train enhance --steps "${STEPS:-4000}" "${NIGHT[@]}" --init-from archives/enhance/enhance.pt "$@"
}

case "${1:?usage: run.sh night-flare|ship}" in
  night-flare) night_flare --max-minutes "${MAX_MINUTES:-70}" ;;
  ship) night_flare --export-to archives/enhance/enhance.pt ;;
  *) echo "unknown step $1" >&2; exit 2 ;;
esac
