#!/usr/bin/env bash
# GPU smoke check: a few training steps of VFL-Net and Video-FocalNet-B at 8 x 224 under
# torchrun (NCCL), AMP off and on, then a 4 clips x 3 crops evaluation, on generated 320x240 videos.
# Prints step time (clips/s = batch / time), peak GPU memory and the loss from the training log.
#   bash scripts/gpu_check.sh            # BATCH=8 STEPS=6 by default
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
BATCH=${BATCH:-8}
STEPS=${STEPS:-6}
WORK=${WORK:-$(mktemp -d /tmp/dvfl_gpu_check.XXXX)}
$PY -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "scripts/gpu_check.sh needs a CUDA GPU")'
$PY -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0))'
DATA="$WORK/data"
[ -f "$DATA/train.csv" ] || $PY -m datasets.synthetic --out "$DATA" --clips-per-class $(( BATCH * STEPS / 5 + 1 )) \
    --val-per-class 2 --size 320x240 --frames 48
for model in VFL-Net video-focalnet_base; do
  for amp in O0 O1; do
    echo "=== $model, AMP $amp ==="
    torchrun --nproc_per_node 1 --standalone main.py --cfg "configs/ucf101/$model.yaml" --output "$WORK/out_$amp" \
      --batch-size "$BATCH" --amp-opt-level "$amp" \
      --opts DATA.ROOT "$DATA" DATA.TRAIN_FILE "$DATA/train.csv" DATA.VAL_FILE "$DATA/val.csv" \
      DATA.LABEL_LIST "$DATA/labels.csv" DATA.DATASET gpu_check MODEL.NUM_CLASSES 5 DATA.NUM_WORKERS 8 \
      TRAIN.EPOCHS 1 TRAIN.WARMUP_EPOCHS 0 TRAIN.AUTO_RESUME False PRINT_FREQ 1 \
      TEST.NUM_CLIP 4 TEST.NUM_CROP 3 2>&1 | tee "$WORK/$model.$amp.log" \
      | grep -E "parameters|Train: |Test: |Error" | sed 's/^.*INFO //'
    $PY - "$WORK/$model.$amp.log" "$BATCH" <<'PYEOF'
import re, sys
log, batch = open(sys.argv[1]).read(), int(sys.argv[2])
steps = [(float(t), float(l), float(m)) for t, l, m in
         re.findall(r'time ([\d.]+) \([\d.]+\)\s+loss ([\d.]+) .*?mem (\d+)MB', log)][1:]  # skip warm-up
if steps:
    t = sum(s[0] for s in steps) / len(steps)
    print(f'SUMMARY clips/s {batch / t:.1f}  step {t * 1000:.0f} ms  peak mem {max(s[2] for s in steps):.0f} MB  '
          f'last loss {steps[-1][1]:.4f}')
PYEOF
  done
done
echo "logs in $WORK"
