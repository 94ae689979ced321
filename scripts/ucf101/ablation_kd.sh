#!/usr/bin/env bash
# The forward-KL ablation on UCF101: VFL-Net distilled from the cached Video-FocalNet-B teacher (run
# video-focalnet_base.sh first) over KD.ALPHA x KD.TEMPERATURE, plus VFL-Net trained alone; table and
# heat map in output/ucf101/ablation_kd/ (docs/ablation.md). The grid holds the paper's settings (alpha 0.2
# and 0.3 at T 10). GPUS defaults to 3, the paper's setup; GRID replaces the grid; BASELINE may name
# a finished run folder of VFL-Net.sh instead of its config. Extra KEY VALUE pairs are overrides for
# every run; --dry-run prints the commands.
set -euo pipefail
cd "$(dirname "$0")/../.."
GPUS=${GPUS:-3}
GRID=${GRID:-"KD.ALPHA 0.2,0.3,0.5,0.9 KD.TEMPERATURE 1,4,10"}
BASELINE=${BASELINE:-configs/ucf101/VFL-Net.yaml}
# shellcheck disable=SC2086  # GRID is words
${PY:-python} -m tools.sweep --cfg configs/ucf101/VFL-Net_kd.yaml --out output/ucf101/ablation_kd --gpus "$GPUS" --baseline "$BASELINE" $GRID --opts DATA.NUM_FRAMES 8 "$@"
