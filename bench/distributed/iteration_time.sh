#!/usr/bin/env bash
# Iteration time of data-parallel training (issue #21) with 1 and 2 ranks on this machine, on the
# reference configuration of bench/training_bench.cpp: 3D PlainConvUNet, 5 stages (32, 64, 128,
# 256, 320), patch 64^3, global batch 2 (2 ranks: 1 sample each), 3 sigmoid channels, deep
# supervision, DC + BCE, SGD. The real `mlseg train` loop (loader, augmentation, gradient
# all-reduce over Gloo on loopback) on a synthetic phantom; the time per iteration is log.jsonl's
# train_seconds / iterations of the second epoch (the first carries warm-up).
#
#   bash bench/distributed/iteration_time.sh                 # about 6 min on 2 cores
#   ITERS=4 RANKS="1 2" bash bench/distributed/iteration_time.sh
#
# Knobs: MLSEG [build/mlseg]; OUT [/tmp/mlseg_ddp_bench] (replaced); ITERS [10] per epoch (2
# epochs); RANKS ["1 2"]. On 2 cores little speed-up is expected: the ranks share the cores
# (--threads 0 = cores / ranks); the point is the cost of the all-reduce and the split.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
MLSEG=${MLSEG:-$root/build/mlseg}
OUT=${OUT:-/tmp/mlseg_ddp_bench}
ITERS=${ITERS:-10}
RANKS=${RANKS:-1 2}
PYTHON=${PYTHON:-/usr/bin/python3}

rm -rf "$OUT" && mkdir -p "$OUT"
raw="$OUT/raw/Dataset900_Phantom"
"$MLSEG" synth "$raw" --cases 6 --shape 80 96 96 --spacing 1 1 1 --channels 3 --format regions -q
"$MLSEG" preprocess "$raw" --work-dir "$OUT/work" -q > "$OUT/preprocess.log"
"$PYTHON" - "$OUT/work/Dataset900_Phantom/plans.json" <<'PY'
import json, sys
path = sys.argv[1]
plans = json.load(open(path))
c = plans["configurations"]["3d_fullres"]
c["patch_size"] = [64, 64, 64]
c["batch_size"] = 2
k = c["architecture"]["arch_kwargs"]
k.update(n_stages=5, features_per_stage=[32, 64, 128, 256, 320], kernel_sizes=[[3, 3, 3]] * 5,
         strides=[[1, 1, 1]] + [[2, 2, 2]] * 4, n_conv_per_stage=[2] * 5, n_conv_per_stage_decoder=[2] * 4)
json.dump(plans, open(path, "w"), indent=1)
PY
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, avx512_bf16: $(grep -q avx512_bf16 /proc/cpuinfo && echo yes || echo no)"
echo "ranks  global batch  per rank  s/iteration (epoch 2)  data wait s/iteration"
for n in $RANKS; do
  work="$OUT/work_$n"
  cp -r "$OUT/work" "$work"
  "$MLSEG" train "$raw" --work-dir "$work" --epochs 2 --iters-per-epoch "$ITERS" --val-iterations 1 \
    --skip-final-validation -q --nproc-per-node "$n" > "$OUT/train_$n.log" 2>&1 ||
    { echo "train with $n ranks failed: see $OUT/train_$n.log" >&2; exit 1; }
  "$PYTHON" - "$work/Dataset900_Phantom/results/3d_fullres/fold_0/log.jsonl" "$n" <<'PY'
import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
r = records[-1]
n = int(sys.argv[2])
print(f"{n:<6} 2             {2 // n:<9} {r['train_seconds'] / r['iterations']:<22.3f} {r['data_wait_seconds'] / r['iterations']:.3f}")
PY
done
