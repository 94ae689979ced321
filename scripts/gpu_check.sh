#!/usr/bin/env bash
# GPU check, one script for a CUDA machine (about 10 minutes on one H200):
#  1. the CUDA-marked tests (AMP fp16 + GradScaler and bf16, NCCL DDP, channels-last, torch.compile,
#     evaluation and tools.predict on CUDA equal to CPU);
#  2. VFL-Net and Video-FocalNet-B training steps at 8 x 224 under bf16: clips/s, peak memory, MFU
#     (PEAK_TFLOPS: the GPU's dense bf16 peak, default the H200's ~989), and the training input path
#     with WORKERS loader workers against the model's consumption (benchmarks/bench_gpu.py);
#  3. a short real run: main.py under torchrun (NCCL, bf16) on generated 320x240 videos with a
#     4 clips x 3 crops evaluation, then tools.predict on CUDA with its checkpoint.
# Every stage runs even when an earlier one fails; the script exits non-zero if any failed.
#   bash scripts/gpu_check.sh            # PEAK_TFLOPS=989 WORKERS=16 BATCHES="8 32 64" STEPS=10
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
PEAK_TFLOPS=${PEAK_TFLOPS:-989}
WORKERS=${WORKERS:-16}
BATCHES=${BATCHES:-8 32 64}
STEPS=${STEPS:-10}
WORK=${WORK:-$(mktemp -d /tmp/dvfl_gpu_check.XXXX)}
DATA="$WORK/data"
FAILED=()

stage() {  # stage NAME COMMAND...: run, keep going on failure, remember it
  local name=$1; shift
  echo; echo "=== $name ==="
  local start=$SECONDS
  if "$@"; then echo "--- $name: ok ($((SECONDS - start)) s)"
  else echo "--- $name: FAILED ($((SECONDS - start)) s)"; FAILED+=("$name"); fi
}

$PY -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "scripts/gpu_check.sh needs a CUDA GPU")' || exit 1
$PY -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported())'

stage "CUDA tests" $PY -m pytest -q -m cuda -p no:cacheprovider tests

# 5 classes x 160 clips: enough batches for the input path's 16 workers (2 x 16 warm + 4 x 16 timed).
stage "generate data" bash -c "[ -f '$DATA/train.csv' ] || $PY -m tools.make_demo_data --out '$DATA' \
    --clips-per-class 160 --val-per-class 2 --size 320x240 --frames 48"

# shellcheck disable=SC2086
stage "bf16 training figures and input path" $PY -m benchmarks.bench_gpu --models VFL-Net video-focalnet_base \
    --batch $BATCHES --steps "$STEPS" --peak-tflops "$PEAK_TFLOPS" --data "$DATA" --num-classes 5 --workers "$WORKERS"

train_and_predict() {
  local out="$WORK/out"
  torchrun --nproc_per_node 1 --standalone main.py --cfg configs/ucf101/VFL-Net.yaml --output "$out" \
    --batch-size 32 --amp-opt-level O1 \
    --opts DATA.ROOT "$DATA" DATA.TRAIN_FILE "$DATA/train.csv" DATA.VAL_FILE "$DATA/val.csv" \
    DATA.LABEL_LIST "$DATA/labels.csv" DATA.DATASET gpu_check MODEL.NUM_CLASSES 5 DATA.NUM_WORKERS "$WORKERS" \
    TRAIN.EPOCHS 1 TRAIN.WARMUP_EPOCHS 0 TRAIN.AUTO_RESUME False PRINT_FREQ 5 \
    TEST.NUM_CLIP 4 TEST.NUM_CROP 3 > "$WORK/main.log" 2>&1
  local rc=$?
  grep -E "parameters|Train: |Test: |Error" "$WORK/main.log" | sed 's/^.*INFO //'
  [ $rc -eq 0 ] || return $rc
  local ckpt
  ckpt=$(ls "$out"/gpu_check/VFL-Net/*/ckpt_epoch_0.pth) || return 1
  $PY -m tools.predict --cfg configs/ucf101/VFL-Net.yaml --checkpoint "$ckpt" --device cuda --topk 2 \
    --opts DATA.LABEL_LIST "$DATA/labels.csv" MODEL.NUM_CLASSES 5 -- "$DATA"/val/*/*.mp4
}
stage "main.py + tools.predict on CUDA (VFL-Net, bf16)" train_and_predict

echo
echo "logs and data in $WORK"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "FAILED stages: ${FAILED[*]}"
  exit 1
fi
echo "all stages passed"
