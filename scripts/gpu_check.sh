#!/usr/bin/env bash
# GPU check, one script for a CUDA machine, sized for 8 minutes or less on one H100 / H200 (the
# total is checked against GPU_CHECK_BUDGET_S, default 480):
#  1. the CUDA-marked tests (AMP float16 + GradScaler and bfloat16, NCCL DDP, channels-last,
#     torch.compile, evaluation and tools.predict on CUDA equal to CPU);
#  2. synthetic videos at 320x240 (python -m tools.make_demo_data);
#  3. VFL-Net and Video-FocalNet-B training steps at 8 x 224 under float16 + GradScaler (the recipe)
#     and bfloat16: clips/s, peak memory, MFU (PEAK_TFLOPS: the GPU's dense float16/bfloat16 peak,
#     default the H100/H200 SXM's ~989), and the training input path with WORKERS loader workers
#     against the model's consumption (benchmarks/bench_gpu.py);
#  4. a short real run: main.py under torchrun (one process, so no process group) with the recipe's
#     AMP (float16 + GradScaler) on the generated videos and a 4 clips x 3 crops evaluation, then
#     tools.predict on the GPU with its checkpoint.
# Every stage runs even when an earlier one fails; the script exits non-zero if any failed.
#   bash scripts/gpu_check.sh            # PEAK_TFLOPS=989 WORKERS=16 BATCHES="32 64" STEPS=10
# GPU_CHECK_DEVICE=cpu is the dry run CI makes (tests/test_gpu_check.py): the same stages and
# commands on the CPU at tiny sizes (2 frames of 32x32, two clips per class), in about a minute.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
WORK=${WORK:-$(mktemp -d /tmp/dvfl_gpu_check.XXXX)}
DATA="$WORK/data"
FAILED=()
if [ "$DEVICE" = cpu ]; then  # tiny sizes: what runs is checked, not how fast
  PEAK_TFLOPS=${PEAK_TFLOPS:-1} WORKERS=${WORKERS:-1} BATCHES=${BATCHES:-2} STEPS=${STEPS:-1}
  MODELS=${MODELS:-VFL-Net} FRAMES=2 SIZE=32 BATCH=2 BUDGET=${GPU_CHECK_BUDGET_S:-0}
  GEN=(--clips-per-class 2 --val-per-class 1 --size 40x32 --frames 16 --workers 1)
  VIEWS=(TEST.NUM_CLIP 1 TEST.NUM_CROP 3) PREDICT_VIEWS=1x3
else
  PEAK_TFLOPS=${PEAK_TFLOPS:-989} WORKERS=${WORKERS:-16} BATCHES=${BATCHES:-32 64} STEPS=${STEPS:-10}
  MODELS=${MODELS:-VFL-Net video-focalnet_base} FRAMES=8 SIZE=224 BATCH=32 BUDGET=${GPU_CHECK_BUDGET_S:-480}
  # 6 classes x 160 clips: enough batches for the input path's 16 workers (2 x 16 warm + 4 x 16 timed).
  GEN=(--clips-per-class 160 --val-per-class 2 --size 320x240 --frames 48 --workers "$WORKERS")
  VIEWS=(TEST.NUM_CLIP 4 TEST.NUM_CROP 3) PREDICT_VIEWS=4x3
fi

stage() {  # stage NAME COMMAND...: run, keep going on failure, remember it
  local name=$1; shift
  echo; echo "=== $name ==="
  local start=$SECONDS
  if "$@"; then echo "--- $name: ok ($((SECONDS - start)) s)"
  else echo "--- $name: FAILED ($((SECONDS - start)) s)"; FAILED+=("$name"); fi
}

if [ "$DEVICE" = cuda ]; then
  $PY -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "scripts/gpu_check.sh needs a CUDA GPU (GPU_CHECK_DEVICE=cpu: the dry run)")' || exit 1
  $PY -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported())'
else
  echo "dry run on the CPU (GPU_CHECK_DEVICE=cpu): the stages and commands of the GPU check at tiny sizes"
fi

# Without a GPU every cuda-marked test skips: the stage then checks that they collect.
stage "CUDA tests" $PY -m pytest -q -m cuda -p no:cacheprovider tests

stage "generate data" bash -c "[ -f '$DATA/train.csv' ] || $PY -m tools.make_demo_data --out '$DATA' ${GEN[*]}"
NUM_CLASSES=$(($(wc -l < "$DATA/labels.csv") - 1))  # the id,name header

# shellcheck disable=SC2086
stage "float16 + GradScaler and bfloat16 training figures, input path" $PY -m benchmarks.bench_gpu \
    --device "$DEVICE" --models $MODELS --batch $BATCHES --steps "$STEPS" --frames "$FRAMES" --size "$SIZE" \
    --peak-tflops "$PEAK_TFLOPS" --data "$DATA" --workers "$WORKERS" --input-batch "$BATCH"

train_and_predict() {
  local out="$WORK/out"
  # The recipe's config (AMP O1, AMP_DTYPE float16: float16 + GradScaler) from scratch: no ImageNet file.
  $PY -m torch.distributed.run --nproc_per_node 1 --standalone main.py --cfg configs/ucf101/VFL-Net.yaml \
    --output "$out" --batch-size "$BATCH" \
    --opts DATA.ROOT "$DATA" DATA.TRAIN_FILE "$DATA/train.csv" DATA.VAL_FILE "$DATA/val.csv" \
    DATA.LABEL_LIST "$DATA/labels.csv" DATA.DATASET gpu_check MODEL.NUM_CLASSES "$NUM_CLASSES" \
    DATA.NUM_WORKERS "$WORKERS" DATA.NUM_FRAMES "$FRAMES" DATA.INPUT_SIZE "$SIZE" TRAIN.PRETRAINED_PATH '' \
    TRAIN.EPOCHS 1 TRAIN.WARMUP_EPOCHS 0 TRAIN.AUTO_RESUME False PRINT_FREQ 5 "${VIEWS[@]}" > "$WORK/main.log" 2>&1
  local rc=$?
  grep -E "AMP |parameters|Train: |Test: |Error" "$WORK/main.log" | sed 's/^.*INFO //'
  [ $rc -eq 0 ] || return $rc
  local ckpt
  ckpt=$(ls "$out"/gpu_check/VFL-Net/*/ckpt_epoch_0.pth) || return 1
  $PY -m tools.predict --cfg configs/ucf101/VFL-Net.yaml --checkpoint "$ckpt" --device "$DEVICE" --topk 2 \
    --views "$PREDICT_VIEWS" --opts DATA.LABEL_LIST "$DATA/labels.csv" MODEL.NUM_CLASSES "$NUM_CLASSES" DATA.NUM_FRAMES "$FRAMES" \
    DATA.INPUT_SIZE "$SIZE" -- "$DATA"/val/*/*.mp4
}
stage "main.py (float16 + GradScaler) + tools.predict on $DEVICE (VFL-Net)" train_and_predict

echo
echo "logs and data in $WORK; total $SECONDS s"
if [ "$BUDGET" -gt 0 ] && [ "$SECONDS" -gt "$BUDGET" ]; then
  echo "over the time budget of $BUDGET s (GPU_CHECK_BUDGET_S)"
  FAILED+=("time budget")
fi
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "FAILED stages: ${FAILED[*]}"
  exit 1
fi
echo "all stages passed"
