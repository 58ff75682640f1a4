#!/usr/bin/env bash
# Rare-channel benchmark (issue #17, item 7): a visible channel that only 4 of 30 cases contain
# ("rare"), next to its twin of the same size and contrast that every case contains ("cyst"),
# trained for the same number of iterations three ways, each in its own work folder:
#   nnunet    plan --encoding sigmoid,  train --nnunet-defaults  (nnU-Net: uniform channel choice, no weights)
#   mlseg     plan --encoding sigmoid,  train                    (mlseg's defaults: the remedies on)
#   powerset  plan --encoding powerset, train                    (the remedies and the powerset encoding)
# sigmoid is named because plan's auto encoding picks powerset for this phantom: nnunet -> mlseg
# isolates the remedies, mlseg -> powerset the encoding.
# Fold 0 gets 3 training cases and 1 validation case with the rare channel (splits_final.json is
# written here, before analyze, which keeps it). Validation is on the whole validation cases: by
# default `mlseg predict --disable-tta` then `mlseg evaluate --metrics dice` into
# fold_0/validation_no_tta/ (train's own final validation mirrors 8x and computes surface metrics:
# about 5 min per variant on 2 cores); TTA=1 uses train's final validation, fold_0/validation/.
#
#   bash bench/rare_channel.sh                                  # about 100 min on 2 cores
#   EPOCHS=1 ITERS=2 VAL_ITERS=2 bash bench/rare_channel.sh    # smoke run, about 5 min
#
# Knobs (environment, defaults in brackets):
#   MLSEG [build/mlseg]; OUT [/tmp/mlseg_rare_channel], replaced if it holds an earlier run of this
#   script, refused otherwise; SHAPE [40,112,112]; SPACING [2,1,1]; CASES [30]; CHANNELS [10];
#   IMAGE_CHANNELS [1]; RARE_EVERY [8]: the rare channel is in cases 0, 8, 16, 24; BASE_FEATURES [8]
#   and MAX_FEATURES [64]: the demo's small U-Net, so a 2-core CPU trains hundreds of iterations;
#   CPU_BUDGET [1/128]: --preset cpu's budget fraction, a 20x56x48 patch (a tenth of the volume, about
#   0.9 s per iteration); EPOCHS [40] x ITERS [60] iterations trained (at 12 x 60 no variant has learned the rare channel yet), of a SCHEDULE_EPOCHS [1000]
#   epoch poly schedule (--stop-after-epoch: the learning rate stays near nnU-Net's 1e-2, as in the
#   first minutes of a real run; set SCHEDULE_EPOCHS=EPOCHS for a schedule that ends, needed by TTA=1); VAL_ITERS [10] validation batches; VAL_EVERY [5]; TTA [0]; SEED [1234];
#   THREADS [0] = all cores; VARIANTS ["nnunet mlseg powerset"].
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
MLSEG=${MLSEG:-$root/build/mlseg}
OUT=${OUT:-/tmp/mlseg_rare_channel}
SHAPE=${SHAPE:-40,112,112}
SPACING=${SPACING:-2,1,1}
CASES=${CASES:-30}
CHANNELS=${CHANNELS:-10}
IMAGE_CHANNELS=${IMAGE_CHANNELS:-1}
RARE_EVERY=${RARE_EVERY:-8}
EPOCHS=${EPOCHS:-40}
ITERS=${ITERS:-60}
SCHEDULE_EPOCHS=${SCHEDULE_EPOCHS:-1000}
CPU_BUDGET=${CPU_BUDGET:-0.0078125}
BASE_FEATURES=${BASE_FEATURES:-8}
MAX_FEATURES=${MAX_FEATURES:-64}
VAL_ITERS=${VAL_ITERS:-10}
VAL_EVERY=${VAL_EVERY:-5}
TTA=${TTA:-0}
SEED=${SEED:-1234}
THREADS=${THREADS:-0}
VARIANTS=${VARIANTS:-nnunet mlseg powerset}
readonly rare_channel=rare common_channel=cyst configuration=3d_fullres
readonly dataset_name=Dataset960_RareChannel marker=.mlseg_rare_channel_bench

die() {
  echo "rare_channel: $*" >&2
  exit 2
}

[ -x "$MLSEG" ] || die "no mlseg at $MLSEG: build it (cmake --build build) or set MLSEG=/path/to/mlseg"
command -v python3 >/dev/null || die "python3 is needed to write the splits and read summary.json"
if [ -e "$OUT" ]; then
  [ -e "$OUT/$marker" ] || die "$OUT exists and is not an earlier run of this script: set OUT to a new folder"
  rm -rf -- "$OUT"
fi
mkdir -p "$OUT/logs" && touch "$OUT/$marker"
dataset="$OUT/$dataset_name"

# Runs one step, its output in logs/NAME.log; on failure shows the log's end and returns its status.
step() {
  local name=$1
  shift
  if "$@" >"$OUT/logs/$name.log" 2>&1; then return 0; fi
  local status=$?
  echo "  FAILED (exit $status): $*" >&2
  tail -n 15 "$OUT/logs/$name.log" | sed 's/^/    /' >&2
  return "$status"
}

echo "rare_channel: $CASES cases of $SHAPE, $CHANNELS channels, '$rare_channel' in 1 case of $RARE_EVERY," \
  "$EPOCHS epochs x $ITERS iterations, output in $OUT"
step synth "$MLSEG" synth "$dataset" --cases "$CASES" --channels "$CHANNELS" --image-channels "$IMAGE_CHANNELS" \
  --shape "$SHAPE" --spacing "$SPACING" --rare-every "$RARE_EVERY" --seed "$SEED" --format bitmask \
  --name "$dataset_name" --threads "$THREADS" -q || exit 1

# splits_final.json ($1): five folds of consecutive cases; fold 0 must hold exactly one rare case in
# validation and at least one in training (30 cases, RARE_EVERY 8: validation phantom_0000,
# training 0008, 0016, 0024). Fold 0's validation ids go to $2, one a line.
write_splits() {
  python3 - "$1" "$2" "$CASES" "$RARE_EVERY" <<'PY'
import json, sys
path, val_list, cases, rare_every = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ids = ["phantom_%04d" % i for i in range(cases)]
folds = 5
bounds = [round(k * cases / folds) for k in range(folds + 1)]
splits = []
for k in range(folds):
    val = ids[bounds[k]:bounds[k + 1]]
    splits.append({"train": [i for i in ids if i not in val], "val": val})
rare = {ids[i] for i in range(cases) if rare_every > 0 and i % rare_every == 0}
val_rare = len(rare & set(splits[0]["val"]))
train_rare = len(rare & set(splits[0]["train"]))
if val_rare != 1 or train_rare < 1:
    sys.exit("fold 0 holds %d rare case(s) in validation and %d in training; pick CASES and RARE_EVERY so that "
             "it holds 1 and at least 1 (e.g. CASES=30 RARE_EVERY=8)" % (val_rare, train_rare))
with open(path, "w") as f:
    json.dump(splits, f, indent=1)
with open(val_list, "w") as f:
    f.write("".join(i + "\n" for i in splits[0]["val"]))
print("fold 0: %d training cases (%d with '%s'), %d validation cases (1 with it)"
      % (len(splits[0]["train"]), train_rare, "rare", len(splits[0]["val"])))
PY
}

# Whole-case validation of fold 0 without mirroring (TTA=0): predict the validation images, score
# Dice against their labels; summary.json in fold_0/validation_no_tta/.
validate() {
  local variant=$1 work=$2 fold_dir=$3
  [ "$TTA" = 1 ] && return 0
  local images="$work/fold_0_val/imagesTr" labels="$work/fold_0_val/labelsTr" out="$fold_dir/validation_no_tta"
  mkdir -p "$images" "$labels"
  local case_id file
  while read -r case_id; do
    for file in "$dataset/imagesTr/${case_id}"_[0-9][0-9][0-9][0-9].nii.gz; do ln -sf "$file" "$images/"; done
    ln -sf "$dataset/labelsTr/$case_id.nii.gz" "$labels/"
  done <"$work/fold_0_val.txt"
  step "$variant.predict" "$MLSEG" predict -i "$images" -o "$out" -m "$(dirname "$fold_dir")" -f 0 --disable-tta --checkpoint latest \
    --format bitmask --threads "$THREADS" -q &&
    step "$variant.evaluate" "$MLSEG" evaluate --ref "$labels" --pred "$out" --dataset-json "$dataset/dataset.json" \
      --metrics dice --threads "$THREADS" -q
}

declare -A seconds status
for variant in $VARIANTS; do
  work="$OUT/work_$variant"
  mkdir -p "$work/$dataset_name"
  echo "[$variant] analyze, plan (--preset cpu), preprocess"
  write_splits "$work/$dataset_name/splits_final.json" "$work/fold_0_val.txt" || exit 1
  plan_flags=(--preset cpu --cpu-budget-fraction "$CPU_BUDGET" --base-features "$BASE_FEATURES" --max-features "$MAX_FEATURES" --encoding sigmoid)
  train_flags=()
  case $variant in
    nnunet) train_flags+=(--nnunet-defaults) ;;
    mlseg) ;;
    powerset) plan_flags=(--preset cpu --cpu-budget-fraction "$CPU_BUDGET" --base-features "$BASE_FEATURES" --max-features "$MAX_FEATURES" --encoding powerset) ;;
    *) die "unknown variant '$variant' (nnunet, mlseg, powerset)" ;;
  esac
  if ! { step "$variant.analyze" "$MLSEG" analyze "$dataset" --work-dir "$work" --threads "$THREADS" -q &&
    step "$variant.plan" "$MLSEG" plan "$dataset" --work-dir "$work" "${plan_flags[@]}" --threads "$THREADS" -q &&
    step "$variant.preprocess" "$MLSEG" preprocess "$dataset" -c "$configuration" --work-dir "$work" \
      --threads "$THREADS" -q; }; then
    status[$variant]="prepare failed"
    continue
  fi
  patch=$(python3 -c 'import json,sys; print("x".join(map(str, json.load(open(sys.argv[1]))["configurations"][sys.argv[2]]["patch_size"])))' \
    "$work/$dataset_name/plans.json" "$configuration")
  echo "[$variant] train: patch $patch, $EPOCHS epochs x $ITERS iterations, then whole-case validation"
  fold_dir="$work/$dataset_name/results/$configuration/fold_0"
  final_flags=(--skip-final-validation)
  [ "$TTA" = 1 ] && final_flags=()
  start=$(date +%s.%N)
  schedule_flags=(--epochs "$EPOCHS")
  [ "$SCHEDULE_EPOCHS" != "$EPOCHS" ] && schedule_flags=(--epochs "$SCHEDULE_EPOCHS" --stop-after-epoch "$EPOCHS")
  if step "$variant.train" "$MLSEG" train "$dataset" -c "$configuration" -f 0 --work-dir "$work" "${schedule_flags[@]}" \
    --iters-per-epoch "$ITERS" --val-iterations "$VAL_ITERS" --val-every "$VAL_EVERY" --seed "$SEED" --threads "$THREADS" \
    ${train_flags[@]+"${train_flags[@]}"} ${final_flags[@]+"${final_flags[@]}"} && validate "$variant" "$work" "$fold_dir"; then
    status[$variant]=ok
  else
    status[$variant]="train or validation failed"
  fi
  seconds[$variant]=$(python3 -c "import sys; print('%.0f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$start" "$(date +%s.%N)")
done

echo
model=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
bf16=no
grep -qw avx512_bf16 /proc/cpuinfo && bf16=yes
echo "CPU: ${model:-unknown} ($(nproc) cores, avx512_bf16: $bf16); $CASES cases of $SHAPE, '$rare_channel' in" \
  "$(( (CASES + RARE_EVERY - 1) / RARE_EVERY )), $EPOCHS x $ITERS iterations"
echo "Whole-case validation Dice, fold 0. mean = nnU-Net's mean over cases (a case without the channel"
echo "counts 0 when a single voxel is predicted, and is left out when none is); pooled = from the counts"
echo "summed over the 6 cases; in-case = mean over the cases that hold the channel. seconds = train + validation."
printf '%-9s %-27s %-27s %-8s %-8s %s\n' variant "$rare_channel: mean pooled in-case" "$common_channel: mean pooled in-case" \
  "mean" seconds state
for variant in $VARIANTS; do
  validation=validation_no_tta
  [ "$TTA" = 1 ] && validation=validation
  summary="$OUT/work_$variant/$dataset_name/results/$configuration/fold_0/$validation/summary.json"
  python3 - "$variant" "$summary" "${status[$variant]:-not run}" "${seconds[$variant]:-}" \
    "$rare_channel" "$common_channel" <<'PY'
import json, os, sys
variant, path, state, seconds, rare, common = sys.argv[1:7]
def fmt(value):
    return "n/a" if value is None else "%.3f" % value
def in_case(summary, channel):
    # Mean Dice over the cases whose reference holds the channel.
    values = [c["metrics"][channel]["Dice"] for c in summary.get("metric_per_case", [])
              if c["metrics"].get(channel, {}).get("n_ref", 0) > 0 and c["metrics"][channel].get("Dice") is not None]
    return sum(values) / len(values) if values else None
cells = {rare: "-", common: "-"}
mean = "-"
if os.path.exists(path):
    summary = json.load(open(path))
    pooled = summary.get("mlseg", {}).get("pooled", {})
    for channel in (rare, common):
        cells[channel] = "%-7s %-7s %-7s" % (fmt(summary.get("mean", {}).get(channel, {}).get("Dice")),
                                              fmt(pooled.get(channel, {}).get("Dice")), fmt(in_case(summary, channel)))
    mean = fmt(summary.get("foreground_mean", {}).get("Dice"))
elif state == "ok":
    state = "no summary.json"
print("%-9s %-27s %-27s %-8s %-8s %s" % (variant, cells[rare], cells[common], mean, seconds or "-", state))
PY
done
echo "Logs: $OUT/logs/"
