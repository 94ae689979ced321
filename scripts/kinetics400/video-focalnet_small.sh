#!/usr/bin/env bash
# Train video-focalnet_small on kinetics400 with the Video-FocalNets recipe (GPUS defaults to 8, the published script's
# count; DATA.BATCH_SIZE is per GPU and the LR scales with the total batch). Extra KEY VALUE pairs are overrides.
set -euo pipefail
cd "$(dirname "$0")/../.."
GPUS=${GPUS:-8}
torchrun --nproc_per_node "$GPUS" main.py --cfg configs/kinetics400/video-focalnet_small.yaml --output output/ "$@"
