#!/usr/bin/env bash
# Train video-focalnet_small on UCF101 (GPUS defaults to 3, the paper's setup). Extra KEY VALUE pairs are overrides.
set -euo pipefail
cd "$(dirname "$0")/../.."
GPUS=${GPUS:-3}
torchrun --nproc_per_node "$GPUS" main.py --cfg configs/ucf101/video-focalnet_small.yaml --output output/ --opts DATA.NUM_FRAMES 8 "$@"
