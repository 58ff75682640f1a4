#!/usr/bin/env bash
# Peak memory of predicting a whole-body-like CT with 117 label channels (issue #23 part 3):
# `mlseg predict -m` against nnU-Net v2's predictor on the same untrained model folders and image,
# each as one process timed by /usr/bin/time -v (peak RSS, wall time), one after the other.
#
#   bash bench/memory/predict_ct.sh [Z ...]        (default: 150 600; Z slices of 512 x 512)
#
# make_ct.py writes the image (0.8 x 0.8 x 1.5 mm, int16 HU) and two nnU-Net model folders with a
# small PlainConvUNet (features 4-8-16, patch 32 x 128 x 128): softmax (118 classes) and sigmoid
# (117 regions). Both sides run without mirroring, step STEP (default 1.0, so that a 600-slice case
# takes minutes, not an hour, on 2 cores), fp32, torch threads = cores; mlseg with its default
# --memory-budget-gb (auto), nnU-Net with its float16 accumulators as shipped. Every run is capped
# at CAP_BYTES of address space (prlimit --as, default 20e9: this machine has 24 GB and is shared),
# so a side that would need more fails instead of taking the machine down; the table says so.
# Knobs: MLSEG [build/mlseg], PYTHON [/usr/bin/python3], PEERS [../shared/peers],
#   WORK [/tmp/mlseg-memory], CAP_BYTES [20000000000], STEP [1.0], SIDES ["mlseg nnunet"],
#   KINDS ["sigmoid softmax"], MLSEG_ARGS [""] (e.g. "--memory-budget-gb 1" to force the slab path).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
MLSEG=${MLSEG:-$root/build/mlseg}
PYTHON=${PYTHON:-/usr/bin/python3}
PEERS=${PEERS:-$(cd "$root/.." && pwd)/shared/peers}
WORK=${WORK:-/tmp/mlseg-memory}
CAP_BYTES=${CAP_BYTES:-20000000000}
STEP=${STEP:-1.0}
SIDES=${SIDES:-mlseg nnunet}
KINDS=${KINDS:-sigmoid softmax}
MLSEG_ARGS=${MLSEG_ARGS:-}
SLICES=("$@")
[ ${#SLICES[@]} -gt 0 ] || SLICES=(150 600)
export PYTHONPATH="$PEERS/stubs:$PEERS/vendor" PYTHONDONTWRITEBYTECODE=1
mkdir -p "$WORK"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; cap $CAP_BYTES bytes of address space per run; step $STEP, no TTA"
printf '%-6s %-8s %-7s %10s %9s  %s\n' slices model side peak_GB wall_s status

for z in "${SLICES[@]}"; do
  "$PYTHON" "$here/make_ct.py" "$WORK" "$z" >/dev/null || { echo "make_ct.py failed"; exit 1; }
  for kind in $KINDS; do
    model="$WORK/model_$kind/Dataset990_WholeBody/nnUNetTrainer__nnUNetPlans__3d_fullres"
    for side in $SIDES; do
      out="$WORK/out_${side}_${kind}_$z"
      log="$WORK/${side}_${kind}_$z.log"
      rm -rf "$out"
      if [ "$side" = mlseg ]; then
        cmd=("$MLSEG" predict -i "$WORK/input_$z" -o "$out" -m "$model" --disable-tta --step-size "$STEP" --precision fp32 $MLSEG_ARGS)
      else
        cmd=("$PYTHON" "$here/nnunet_predict.py" "$model" "$WORK/input_$z" "$out" "$STEP")
      fi
      /usr/bin/time -v -o "$log.time" prlimit --as="$CAP_BYTES" "${cmd[@]}" >"$log" 2>&1
      rc=$?
      kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log.time")
      wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$log.time" |
             awk -F: '{ s = 0; for (i = 1; i <= NF; ++i) s = s * 60 + $i; print s }')
      status=ok
      if [ $rc -ne 0 ] || [ ! -e "$out/ct.nii.gz" ]; then
        status="FAILED (exit $rc): $(grep -iE 'allocate|memory|error|killed' "$log" | tail -1 | sed 's/.*\(tried to allocate [0-9]* bytes\).*/\1/' | cut -c1-110)"
      fi
      printf '%-6s %-8s %-7s %10.2f %9.1f  %s\n' "$z" "$kind" "$side" "$(echo "$kb" | awk '{ print $1 * 1024 / 1e9 }')" "$wall" "$status"
      grep -m1 'z slabs\|whole volume' "$log" | sed 's/^/         /'
    done
  done
done
