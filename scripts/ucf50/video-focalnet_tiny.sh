#!/usr/bin/env bash
# Train video-focalnet_tiny on UCF50 (GPUS defaults to 3, the paper's setup). Extra KEY VALUE pairs are overrides.
set -euo pipefail
cd "$(dirname "$0")/../.."
GPUS=${GPUS:-3}
torchrun --nproc_per_node "$GPUS" main.py --cfg configs/ucf50/video-focalnet_tiny.yaml --output output/ --opts DATA.NUM_FRAMES 8 "$@"
