#!/usr/bin/env bash
# Equal-budget training comparison of mlseg against the real nnU-Net v2 (issue #18, part 2).
# See bench/parity/README.md. Usage:
#
#   bash bench/parity/run.sh DATASET_DIR
#   EPOCHS=2 ITERS=5 bash bench/parity/run.sh ../shared/data/Dataset004_Hippocampus        # smoke run
#   REDUCE='patch=64,64,64;features=16,32,64,128,256;batch=2' bash bench/parity/run.sh ../shared/data/Dataset001_BraTS2015
#
# Steps (logs in $WORK/logs/, results in $WORK/results/):
#   1. nnU-Net: fingerprint, ExperimentPlanner, optional CPU reduction of 3d_fullres (REDUCE),
#      DefaultPreprocessor into nnU-Net's numpy dataset format, nnU-Net's own 5-fold split.
#   2. mlseg: the same splits_final.json, `mlseg plan`, then 3d_fullres patch_size, batch_size and
#      architecture replaced by the ones nnU-Net trains with, `mlseg plan --check`, `mlseg preprocess`.
#   3. Timed, one after the other: nnU-Net's nnUNetTrainer (EPOCHS x ITERS, then its final validation
#      of the fold's validation cases), and `mlseg train` (the same EPOCHS x ITERS, then its final validation).
#   4. Both validation folders scored by one evaluator (`mlseg evaluate`, Dice) against the dataset's
#      labels with the dataset's dataset.json (regions as regions for both); a table and results.json.
#
# Knobs (environment, defaults in brackets):
#   WORK [/tmp/mlseg_parity/<dataset folder name>]: replaced if it holds an earlier run of this script
#   MLSEG [<repo>/build/mlseg]: copied (with mlseg-full) to $WORK/bin once at the start and run from there
#   PEERS [<repo>/../shared/peers]: nnU-Net v2 vendor + stubs
#   PYTHON [/usr/bin/python3]: a python with torch (Debian's python3-torch)
#   EPOCHS [10] x ITERS [30]: training iterations, on both sides; VAL_ITERS [2]: per-epoch validation
#     batches on both sides (nnU-Net num_val_iterations_per_epoch, mlseg --val-iterations)
#   FOLD [0]; REDUCE ['']: nnU-Net 3d_fullres reduction (see nnunet_side.py), '' = nnU-Net's own plan
#   THREADS [2]: torch threads of nnU-Net's trainer (mlseg: --threads, 0 = all cores, its default)
#   MLSEG_THREADS [0]; NNUNET_N_PROC_DA [2]: nnU-Net's data augmentation worker processes
#   NNUNET_DEF_N_PROC [2]: nnU-Net's export/metrics pool
#   MLSEG_VARIANTS ["default"]: "default" = mlseg's own defaults; add "nnunet-defaults" for a second
#     mlseg row trained with --nnunet-defaults (same plans and preprocessed data, own results folder)
#   SEED [12345]: mlseg --seed; nnU-Net's main process (torch, numpy, random) seeded likewise (its
#     augmentation workers seed themselves). Repeat runs with other SEEDs and WORKs, then
#     bench/parity/aggregate.py WORK... for the mean and spread over seeds
#   SIDES ["nnunet mlseg"]: which sides to train (the other's earlier results are reused if present)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ $# -eq 1 ] || { sed -n 2,8p "$0"; exit 2; }
DATASET=$(cd "$1" 2>/dev/null && pwd) || { echo "parity: no dataset folder $1" >&2; exit 2; }
name=$(basename "$DATASET")
WORK=${WORK:-/tmp/mlseg_parity/$name}
MLSEG=${MLSEG:-$root/build/mlseg}
PEERS=${PEERS:-$(cd "$root/.." && pwd)/shared/peers}
PYTHON=${PYTHON:-/usr/bin/python3}
EPOCHS=${EPOCHS:-10}
ITERS=${ITERS:-30}
VAL_ITERS=${VAL_ITERS:-2}
FOLD=${FOLD:-0}
REDUCE=${REDUCE:-}
THREADS=${THREADS:-2}
MLSEG_THREADS=${MLSEG_THREADS:-0}
NNUNET_N_PROC_DA=${NNUNET_N_PROC_DA:-2}
NNUNET_DEF_N_PROC=${NNUNET_DEF_N_PROC:-2}
MLSEG_VARIANTS=${MLSEG_VARIANTS:-default}
SIDES=${SIDES:-nnunet mlseg}
SEED=${SEED:-12345}
readonly config=3d_fullres marker=.mlseg_parity_bench

die() { echo "parity: $*" >&2; exit 2; }
[ -x "$MLSEG" ] || die "no mlseg at $MLSEG: build it (bash scripts/build.sh, or the README's cmake) or set MLSEG=/path/to/mlseg"
[ -x "$(dirname "$MLSEG")/mlseg-full" ] || die "no mlseg-full next to $MLSEG (mlseg execs it for every command but evaluate)"
[ -d "$PEERS/vendor/nnunetv2" ] || die "no nnU-Net vendor checkout at $PEERS/vendor: set PEERS"
"$PYTHON" -c 'import torch, numpy, scipy, nibabel' 2>/dev/null || die "$PYTHON lacks torch/numpy/scipy/nibabel (run $PEERS/setup.sh)"
[ -f "$DATASET/dataset.json" ] || die "$DATASET has no dataset.json"

if [ -e "$WORK" ] && [ "${SIDES}" = "nnunet mlseg" ]; then
  [ -e "$WORK/$marker" ] || die "$WORK exists and is not an earlier run of this script: set WORK to a new folder"
  rm -rf -- "$WORK"
fi
mkdir -p "$WORK/logs" "$WORK/results" "$WORK/bin" && touch "$WORK/$marker"
# A private copy: build/mlseg may be rebuilt while this runs.
cp "$MLSEG" "$(dirname "$MLSEG")/mlseg-full" "$WORK/bin/" || die "cannot copy $MLSEG"
ML="$WORK/bin/mlseg"
export PYTHONPATH="$PEERS/stubs:$PEERS/vendor" PYTHONDONTWRITEBYTECODE=1
export nnUNet_n_proc_DA=$NNUNET_N_PROC_DA nnUNet_def_n_proc=$NNUNET_DEF_N_PROC
mwork="$WORK/mlseg"
regions=$("$PYTHON" -c 'import json,sys; print(1 if "regions_class_order" in json.load(open(sys.argv[1])) else 0)' "$DATASET/dataset.json")

step() {  # step NAME CMD...: output in logs/NAME.log; on failure the log's end
  local n=$1; shift
  if "$@" >"$WORK/logs/$n.log" 2>&1; then return 0; fi
  local s=$?
  echo "  FAILED (exit $s): $*" >&2
  tail -n 25 "$WORK/logs/$n.log" | sed 's/^/    /' >&2
  return $s
}

busy_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }

timed() {  # timed NAME CMD...: wall and CPU seconds of CMD's process tree, CPU used by everything else
  local n=$1; shift
  local b0 t0 t1 b1 rc
  b0=$(busy_jiffies)
  t0=$(date +%s.%N)
  ( while sleep 5; do cut -d' ' -f1 /proc/loadavg; done ) >"$WORK/logs/$n.load" &
  local mon=$!
  /usr/bin/time -f '%e %U %S' -o "$WORK/logs/$n.time" "$@" >"$WORK/logs/$n.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  b1=$(busy_jiffies)
  kill "$mon" 2>/dev/null; wait "$mon" 2>/dev/null
  "$PYTHON" - "$n" "$rc" "$t0" "$t1" "$b0" "$b1" "$WORK/logs/$n.time" "$WORK/logs/$n.load" "$WORK/results/$n.timing.json" <<'PY'
import json, sys
n, rc, t0, t1, b0, b1, tf, lf, out = sys.argv[1:]
wall = float(t1) - float(t0)
try:
    e, u, s = (float(v) for v in open(tf).read().split()[-3:])
except Exception:
    e, u, s = wall, 0.0, 0.0  # the command did not run (no /usr/bin/time output)
loads = [float(v) for v in open(lf).read().split()]
busy = (float(b1) - float(b0)) / 100.0
d = {'name': n, 'exit': int(rc), 'wall_s': wall, 'cpu_user_s': u, 'cpu_sys_s': s,
     'machine_busy_cpu_s': busy, 'foreign_cpu_s': max(0.0, busy - u - s),
     'load1_mean': sum(loads) / len(loads) if loads else None, 'load1_max': max(loads) if loads else None}
json.dump(d, open(out, 'w'), indent=1)
load = '%.1f, max %.1f' % (d['load1_mean'], d['load1_max']) if loads else 'n/a (shorter than one 5 s sample)'
print('  %s: %.0f s wall, %.0f s CPU (user+sys); other processes used %.0f CPU s meanwhile (load1 mean %s)'
      % (n, wall, u + s, d['foreign_cpu_s'], load))
PY
  if [ "$rc" != 0 ]; then
    echo "  FAILED (exit $rc): $*" >&2
    tail -n 25 "$WORK/logs/$n.log" | sed 's/^/    /' >&2
  fi
  return "$rc"
}

echo "parity: $name, fold $FOLD, $EPOCHS epochs x $ITERS iterations (+$VAL_ITERS validation batches per epoch) per side; work in $WORK"
echo "parity: mlseg $MLSEG (copied to $ML); nnU-Net from $PEERS; REDUCE='${REDUCE}'"

# ---------------------------------------------------------------- 1. nnU-Net prepare
if [[ " $SIDES " == *" nnunet "* ]]; then
  echo "[nnU-Net] fingerprint, plan, preprocess (numpy format), splits"
  step nnunet.prepare "$PYTHON" "$here/nnunet_side.py" prepare --dataset-dir "$DATASET" --work "$WORK" --reduce "$REDUCE" || exit 1
  tail -n 1 "$WORK/logs/nnunet.prepare.log" | sed 's/^/  /'
fi
npre="$WORK/nnunet/preprocessed/$name"
[ -f "$npre/nnUNetPlans.json" ] || die "no nnU-Net plans in $npre"

# ---------------------------------------------------------------- 2. mlseg prepare
prepare_mlseg() {
  mkdir -p "$mwork/$name"
  cp "$npre/splits_final.json" "$mwork/$name/splits_final.json"
  local enc=()
  [ "$regions" = 1 ] && enc=(--encoding sigmoid)   # nnU-Net's region training: one sigmoid per region
  step mlseg.plan "$ML" plan "$DATASET" --work-dir "$mwork" ${enc[@]+"${enc[@]}"} || return 1
  cp "$mwork/$name/plans.json" "$mwork/$name/plans.mlseg_original.json"
  # The network nnU-Net trains: patch, batch, architecture (arch_kwargs) of 3d_fullres.
  "$PYTHON" - "$npre/nnUNetPlans.json" "$mwork/$name/plans.json" <<'PY' || return 1
import json, sys
n = json.load(open(sys.argv[1]))
m = json.load(open(sys.argv[2]))
nc, mc = n['configurations']['3d_fullres'], m['configurations']['3d_fullres']
for k in ('patch_size', 'batch_size'):
    mc[k] = nc[k]
for k, v in nc['architecture']['arch_kwargs'].items():
    mc['architecture']['arch_kwargs'][k] = v
notes = []
for k in ('spacing', 'normalization_schemes', 'use_mask_for_norm'):
    if nc.get(k) != mc.get(k):
        notes.append('%s: nnU-Net %s, mlseg %s (each side keeps its own)' % (k, nc.get(k), mc.get(k)))
for k in ('transpose_forward',):
    if n.get(k) != m.get(k):
        notes.append('%s: nnU-Net %s, mlseg %s' % (k, n.get(k), m.get(k)))
m['parity_note'] = 'patch_size, batch_size and architecture.arch_kwargs of 3d_fullres copied from nnU-Net\'s nnUNetPlans.json'
json.dump(m, open(sys.argv[2], 'w'), indent=1)
print('mlseg plans: patch %s, batch %d, features %s' % (mc['patch_size'], mc['batch_size'],
      mc['architecture']['arch_kwargs']['features_per_stage']))
for t in notes:
    print('  differs: ' + t)
PY
  step mlseg.plan_check "$ML" plan "$DATASET" --work-dir "$mwork" --check || return 1
  step mlseg.preprocess "$ML" preprocess "$DATASET" -c "$config" --work-dir "$mwork" || return 1
}
if [[ " $SIDES " == *" mlseg "* ]]; then
  echo "[mlseg] the same split, plan (+ nnU-Net's patch/batch/architecture), preprocess"
  prepare_mlseg || exit 1
fi

# ---------------------------------------------------------------- 3. timed training + final validation
if [[ " $SIDES " == *" nnunet "* ]]; then
  echo "[nnU-Net] train $EPOCHS x $ITERS (torch threads $THREADS, nnUNet_n_proc_DA $NNUNET_N_PROC_DA), final validation"
  timed nnunet.train "$PYTHON" "$here/nnunet_side.py" train --work "$WORK" --fold "$FOLD" --epochs "$EPOCHS" \
    --iters "$ITERS" --val-iters "$VAL_ITERS" --threads "$THREADS" --seed "$SEED"
fi
if [[ " $SIDES " == *" mlseg "* ]]; then
  for variant in $MLSEG_VARIANTS; do
    vwork=$mwork flags=()
    if [ "$variant" != default ]; then
      # Its own work folder sharing the plans, splits, analysis and preprocessed data.
      vwork="$WORK/mlseg_$variant"
      mkdir -p "$vwork/$name"
      for f in plans.json splits_final.json analysis preprocessed; do ln -sfn "$mwork/$name/$f" "$vwork/$name/$f"; done
      flags=(--"$variant")
    fi
    echo "[mlseg:$variant] train $EPOCHS x $ITERS (--threads $MLSEG_THREADS), final validation"
    # --overwrite: the fold folder belongs to this script (SIDES=mlseg reruns train it again).
    timed "mlseg_$variant.train" "$ML" train "$DATASET" -c "$config" -f "$FOLD" --work-dir "$vwork" --epochs "$EPOCHS" \
      --iters-per-epoch "$ITERS" --val-iterations "$VAL_ITERS" --threads "$MLSEG_THREADS" --seed "$SEED" --overwrite \
      ${flags[@]+"${flags[@]}"}
  done
fi

# ---------------------------------------------------------------- 4. one evaluator
echo "[evaluate] mlseg evaluate --metrics dice on fold $FOLD's validation cases, dataset.json of $DATASET"
ref="$WORK/eval/ref_fold$FOLD"
rm -rf "$ref" && mkdir -p "$ref"
"$PYTHON" - "$npre/splits_final.json" "$FOLD" "$DATASET" "$ref" <<'PY' || exit 1
import json, os, sys
splits, fold, ds, ref = json.load(open(sys.argv[1])), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ending = json.load(open(os.path.join(ds, 'dataset.json')))['file_ending']
for c in splits[fold]['val']:
    os.symlink(os.path.join(ds, 'labelsTr', c + ending), os.path.join(ref, c + ending))
print('  %d validation cases' % len(splits[fold]['val']))
PY
declare -A predfolder
predfolder[nnunet]=$(ls -d "$WORK"/nnunet/results/"$name"/*/fold_"$FOLD"/validation 2>/dev/null | head -n 1)
for variant in $MLSEG_VARIANTS; do
  vwork=$mwork
  [ "$variant" != default ] && vwork="$WORK/mlseg_$variant"
  predfolder[mlseg_$variant]="$vwork/$name/results/$config/fold_$FOLD/validation"
done
rows="nnunet"
for variant in $MLSEG_VARIANTS; do rows="$rows mlseg_$variant"; done
for row in $rows; do
  p=${predfolder[$row]:-}
  if [ -z "$p" ] || [ ! -d "$p" ]; then echo "  $row: no validation folder"; continue; fi
  # Only the label files (nnU-Net's folder also holds summary.json, mlseg's dataset.json, CSVs, subfolders).
  pv="$WORK/eval/pred_$row"
  rm -rf "$pv" && mkdir -p "$pv"
  for f in "$ref"/*; do ln -s "$p/$(basename "$f")" "$pv/"; done
  step "evaluate.$row" "$ML" evaluate --ref "$ref" --pred "$pv" --dataset-json "$DATASET/dataset.json" --metrics dice \
    -o "$WORK/results/$row.summary.json" -q || echo "  $row: evaluate failed"
done

# ---------------------------------------------------------------- table + results.json
"$PYTHON" - "$WORK" "$name" "$EPOCHS" "$ITERS" "$VAL_ITERS" "$FOLD" "$REDUCE" "$rows" "$npre/nnUNetPlans.json" "$SEED" <<'PY' | tee "$WORK/results/table.txt"
import json, os, subprocess, sys
work, name, epochs, iters, val_iters, fold, reduce, rows, plans, seed = sys.argv[1:]
rows = rows.split()
res = os.path.join(work, 'results')
cpu = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
model = next((l.split(':', 1)[1].strip() for l in cpu.splitlines() if l.startswith('Model name')), 'unknown')
bf16 = 'avx512_bf16' in open('/proc/cpuinfo').read()
pc = json.load(open(plans))['configurations']['3d_fullres']
out = {'dataset': name, 'fold': int(fold), 'epochs': int(epochs), 'iters_per_epoch': int(iters),
       'iterations': int(epochs) * int(iters), 'val_iters_per_epoch': int(val_iters), 'reduce': reduce,
       'seed': int(seed),
       'patch_size': pc['patch_size'], 'batch_size': pc['batch_size'],
       'features_per_stage': pc['architecture']['arch_kwargs']['features_per_stage'],
       'cpu_model': model, 'avx512_bf16': bf16, 'cores': os.cpu_count(), 'rows': {}}
channels = None
for r in rows:
    row = {}
    sp = os.path.join(res, r + '.summary.json')
    if os.path.exists(sp):
        s = json.load(open(sp))
        row['dice_mean'] = {k: v.get('Dice') for k, v in s.get('mean', {}).items()}
        row['dice_pooled'] = {k: v.get('Dice') for k, v in s.get('mlseg', {}).get('pooled', {}).items()}
        row['cases'] = len(s.get('metric_per_case', []))
        channels = channels or list(row['dice_mean'])
    tp = os.path.join(res, r + '.train.timing.json')
    if os.path.exists(tp):
        row['timing'] = json.load(open(tp))
    if r == 'nnunet':
        # nnU-Net's own split of its time, and its own evaluator's Dice (a cross-check of the one evaluator)
        it = os.path.join(work, 'nnunet', 'timing.json')
        if os.path.exists(it):
            t = json.load(open(it))
            row['nnunet_internal_seconds'] = {k: t[k] for k in ('train_s', 'final_validation_s')}
            own = os.path.join(t['validation_folder'], 'summary.json')
            if os.path.exists(own):
                row['nnunet_own_evaluator_dice_mean'] = {k: v.get('Dice') for k, v in json.load(open(own))['mean'].items()}
    out['rows'][r] = row
channels = channels or []
json.dump(out, open(os.path.join(res, 'results.json'), 'w'), indent=1)
f = lambda v: 'n/a' if v is None else '%.4f' % v
print('\n%s, fold %s, seed %s: %d x %d = %d training iterations per side, %s validation batches per epoch; 3d_fullres patch %s, batch %d, features %s%s'
      % (name, fold, seed, int(epochs), int(iters), out['iterations'], val_iters, 'x'.join(map(str, pc['patch_size'])),
         pc['batch_size'], pc['architecture']['arch_kwargs']['features_per_stage'],
         ' (reduced: %s)' % reduce if reduce else " (nnU-Net's own plan)"))
print('CPU: %s, %d cores, avx512_bf16: %s' % (model, os.cpu_count(), 'yes' if bf16 else 'no'))
print('Dice = mean over the validation cases (mlseg evaluate, nnU-Net\'s mean; pooled in brackets); seconds = train + final validation')
hdr = '%-22s' % 'side' + ''.join('%-22s' % c for c in channels) + '%-9s %-9s %-9s %s' % ('wall s', 'CPU s', 'other s', 'load')
print(hdr)
for r in rows:
    row = out['rows'][r]
    cells = ''.join('%-22s' % ('%s (%s)' % (f(row.get('dice_mean', {}).get(c)), f(row.get('dice_pooled', {}).get(c))))
                    for c in channels)
    t = row.get('timing', {})
    print('%-22s' % r + cells + '%-9s %-9s %-9s %s' % (
        '%.0f' % t['wall_s'] if t else '-', '%.0f' % (t['cpu_user_s'] + t['cpu_sys_s']) if t else '-',
        '%.0f' % t['foreign_cpu_s'] if t else '-',
        '%.1f/%.1f' % (t['load1_mean'], t['load1_max']) if t and t.get('load1_mean') is not None else 'n/a'))
own = out['rows'].get('nnunet', {}).get('nnunet_own_evaluator_dice_mean')
if own:
    print("cross-check, nnU-Net's own evaluator on its folder: " + ', '.join('%s %s' % (k, f(v)) for k, v in own.items()))
if any(out['rows'][r].get('timing', {}).get('foreign_cpu_s', 0) > 60 for r in rows):
    print('WARNING: other processes used the CPU during a timed run ("other s"): wall times are not clean')
PY
echo "results: $WORK/results/ (results.json, table.txt, *.summary.json, *.timing.json); logs: $WORK/logs/"
