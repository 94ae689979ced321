#!/usr/bin/env bash
# Beyond the paper, from Kinetics-400 weights (configs/ucf101/VFL-Net_kd_k400.yaml): Distil VFL-Net from the Video-FocalNet-B teacher on UCF101 (run video-focalnet_base_k400.sh first).
# GPUS defaults to 3, the paper's setup. Extra KEY VALUE pairs are overrides.
set -euo pipefail
cd "$(dirname "$0")/../.."
GPUS=${GPUS:-3}
torchrun --nproc_per_node "$GPUS" main_KD.py --cfg configs/ucf101/VFL-Net_kd_k400.yaml --output output/ --opts DATA.NUM_FRAMES 8 KD.ALPHA 0.2 KD.BETA 0.3 KD.GAMMA 0.5 KD.TEMPERATURE 10 "$@"
