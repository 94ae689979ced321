#!/usr/bin/env bash
# Beyond the paper, from Kinetics-400 weights (configs/hmdb51/VFL-Net_k400.yaml): Train VFL-Net on HMDB51 (GPUS defaults to 3, the paper's setup). Extra KEY VALUE pairs are overrides.
set -euo pipefail
cd "$(dirname "$0")/../.."
GPUS=${GPUS:-3}
torchrun --nproc_per_node "$GPUS" main.py --cfg configs/hmdb51/VFL-Net_k400.yaml --output output/ --opts DATA.NUM_FRAMES 8 "$@"
