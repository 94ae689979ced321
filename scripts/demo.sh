#!/usr/bin/env bash
# The whole method on built-in synthetic data, on a CPU: generate the data (once), train a teacher
# with main.py, train the student alone with main.py, distil it with main_KD.py, evaluate each with
# 2 clips x 3 crops, print a table and write training curves. 95 to 99 s on a 2-core AMD EPYC VM
# (docs/demo.md: the table of seeds and times).
#
# DEMO_SEED sets SEED for the three trainings (default 0). Smaller runs (used by the tests):
# DEMO_CLIPS, DEMO_VAL, DEMO_EPOCHS, DEMO_DATA, DEMO_OUT; PY picks the interpreter (default: the
# project's .venv, set up by scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PY:-}" ]; then
  bash scripts/setup.sh
  PY=.venv/bin/python
fi
DATA=${DEMO_DATA:-data/demo}
OUT=${DEMO_OUT:-output/demo}
CLIPS=${DEMO_CLIPS:-100}
VAL=${DEMO_VAL:-84}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
data_opts=(DATA.ROOT "$DATA" DATA.TRAIN_FILE "$DATA/train.csv" DATA.VAL_FILE "$DATA/val.csv"
           DATA.LABEL_LIST "$DATA/labels.csv" SEED "${DEMO_SEED:-0}")
[ -z "${DEMO_EPOCHS:-}" ] || data_opts+=(TRAIN.EPOCHS "$DEMO_EPOCHS")
start=$(date +%s)

if [ ! -f "$DATA/train.csv" ]; then
  echo "== generating the demo data in $DATA"
  $PY -m tools.make_demo_data --out "$DATA" --clips-per-class "$CLIPS" --val-per-class "$VAL" --size 40 --frames 16 --shake 10
fi
rm -rf "${OUT:?}/demo"  # the previous demo's runs (another seed would mix into their logs)
run_dir() { ls -d "$OUT"/demo/"$1"/*/ | head -n 1; }
last_ckpt() { ls "$(run_dir "$1")"ckpt_epoch_*.pth | sort -V | tail -n 1; }
# Each model's progress as it happens: one line per epoch, validations, the final test.
show() { grep --line-buffered -E "parameters|EPOCH [0-9]|teacher top-1|Acc@1" | sed -u "s/^.*INFO //"; }

echo "== 1/3 teacher (main.py)"
$PY main.py --cfg configs/demo/teacher.yaml --output "$OUT" "${data_opts[@]}" | show
teacher_ckpt=$(last_ckpt teacher)

# The two students need only the teacher: they train side by side, one thread each (OMP_NUM_THREADS),
# each line of their progress tagged with its model.
echo "== 2/3 student alone (main.py) and 3/3 distilled student (main_KD.py, teacher $teacher_ckpt), side by side"
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
$PY main.py --cfg configs/demo/student.yaml --output "$OUT" "${data_opts[@]}" | show | sed -u 's/^/[student]   /' &
student_job=$!
$PY main_KD.py --cfg configs/demo/student_kd.yaml --output "$OUT" "${data_opts[@]}" \
    TEACHER_MODEL.PRETRAINED_PATH "$teacher_ckpt" | show | sed -u 's/^/[distilled] /'
wait "$student_job"
trap - EXIT

# The curves need only the logs: drawn while the table and the prediction run.
$PY -m tools.plot "$(run_dir teacher)" "$(run_dir student)" "$(run_dir distilled)" \
    --labels teacher student distilled --out "$OUT/curves.png" > "$OUT/plot.log" &
plot_job=$!
echo "== results (2 clips x 3 crops per video; chance is 16.7%)"
$PY -m tools.summary teacher="$(run_dir teacher)" student="$(run_dir student)" distilled="$(run_dir distilled)" \
    | tee "$OUT/summary.md"
video="$DATA/$(head -n 1 "$DATA/val.csv" | cut -d, -f1)"
echo "== tools.predict: the distilled student on $video"
$PY -m tools.predict --cfg configs/demo/student_kd.yaml --checkpoint "$(last_ckpt distilled)" "$video" --topk 3 \
    --opts "${data_opts[@]}"
wait "$plot_job"
cat "$OUT/plot.log"
echo "== done in $(( $(date +%s) - start )) s: $OUT/summary.md, $OUT/curves.png"
