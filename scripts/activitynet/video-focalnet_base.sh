#!/usr/bin/env bash
# Train video-focalnet_base on activitynet with the Video-FocalNets recipe (GPUS defaults to 4, the published script's
# count; DATA.BATCH_SIZE is per GPU and the LR scales with the total batch). Extra KEY VALUE pairs are overrides.
set -euo pipefail
cd "$(dirname "$0")/../.."
GPUS=${GPUS:-4}
torchrun --nproc_per_node "$GPUS" main.py --cfg configs/activitynet/video-focalnet_base.yaml --output output/ "$@"
