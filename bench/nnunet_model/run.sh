#!/usr/bin/env bash
# Predicting with an nnU-Net v2 model: nnU-Net's own predictor against `mlseg predict -m` on the same
# model folder and images (issue #19). Usage:
#
#   bash bench/nnunet_model/run.sh MODEL_FOLDER IMAGES_DIR [N_CASES]
#
# MODEL_FOLDER: nnU-Net's DatasetXXX/Trainer__Plans__configuration (plans.json, dataset.json,
#   fold_N/checkpoint_final.pth), e.g. the one bench/parity/run.sh trains:
#   /tmp/mlseg_parity/Dataset004_Hippocampus/nnunet/results/Dataset004_Hippocampus/nnUNetTrainerParity__nnUNetPlans__3d_fullres
# IMAGES_DIR: a folder of CASE_0000.nii.gz files (e.g. ../shared/data/Dataset004_Hippocampus/imagesTr);
#   the first N_CASES [1] cases are predicted.
# Knobs: FOLDS ["0"], MLSEG [build/mlseg], PYTHON [/usr/bin/python3], PEERS [../shared/peers],
#   WORK [/tmp/mlseg_nnunet_model]
#
# Both sides run as a user would run them, one after the other, each as one timed process (start-up,
# model loading, preprocessing, sliding window with mirroring, export): nnU-Net as nnUNetv2_predict
# runs it on a CPU (nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True),
# torch threads = cores, predict_from_files with 3 preprocessing and 3 export workers, float16
# accumulators as shipped); mlseg predict -m with its defaults. The label maps are then compared voxel
# by voxel and with Dice per class.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ $# -ge 2 ] || { sed -n 2,20p "$0"; exit 2; }
MODEL=$(cd "$1" && pwd) || exit 2
IMAGES=$(cd "$2" && pwd) || exit 2
N=${3:-1}
FOLDS=${FOLDS:-0}
MLSEG=${MLSEG:-$root/build/mlseg}
PYTHON=${PYTHON:-/usr/bin/python3}
PEERS=${PEERS:-$(cd "$root/.." && pwd)/shared/peers}
WORK=${WORK:-/tmp/mlseg_nnunet_model}
rm -rf "$WORK" && mkdir -p "$WORK/input" "$WORK/nnunet" "$WORK/mlseg"
ls "$IMAGES"/*_0000.nii.gz | head -n "$N" | while read -r f; do ln -s "$f" "$WORK/input/"; done
export PYTHONPATH="$PEERS/stubs:$PEERS/vendor" PYTHONDONTWRITEBYTECODE=1
cores=$(nproc)
echo "model: $MODEL (folds $FOLDS); $(ls "$WORK/input" | wc -l) case(s) from $IMAGES"

# A file, not stdin: nnU-Net's preprocessing workers are spawned processes that re-import __main__.
cat >"$WORK/nnunet_predict.py" <<'PY'
import sys
import peer_compat  # noqa: F401  (the peers' torch._dynamo stand-in for torch 1.13, ../shared/peers/stubs)
import torch
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

if __name__ == '__main__':
    model, inp, out, folds, cores = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    torch.set_num_threads(cores)  # what nnUNetv2_predict does on a CPU
    p = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True, perform_everything_on_device=True,
                        device=torch.device('cpu'), verbose=False, verbose_preprocessing=False, allow_tqdm=False)
    p.initialize_from_trained_model_folder(model, tuple(int(f) if f != 'all' else f for f in folds.split()),
                                           checkpoint_name='checkpoint_final.pth')
    p.predict_from_files(inp, out, save_probabilities=False, overwrite=True, num_processes_preprocessing=3,
                         num_processes_segmentation_export=3)
PY
/usr/bin/time -f '%e %U %S' -o "$WORK/nnunet.time" "$PYTHON" "$WORK/nnunet_predict.py" "$MODEL" "$WORK/input" "$WORK/nnunet" \
  "$FOLDS" "$cores" >"$WORK/nnunet.log" 2>&1
[ $? = 0 ] || { echo "nnU-Net failed:"; tail -20 "$WORK/nnunet.log"; exit 1; }
# shellcheck disable=SC2086
/usr/bin/time -f '%e %U %S' -o "$WORK/mlseg.time" "$MLSEG" predict -i "$WORK/input" -o "$WORK/mlseg" -m "$MODEL" -f $FOLDS \
  --device cpu >"$WORK/mlseg.log" 2>&1 || { echo "mlseg failed:"; tail -20 "$WORK/mlseg.log"; exit 1; }

"$PYTHON" - "$WORK" "$MODEL" <<'PY'
import glob, json, os, subprocess, sys
import nibabel as nib
import numpy as np
work, model = sys.argv[1], sys.argv[2]
cpu = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
name = next((l.split(':', 1)[1].strip() for l in cpu.splitlines() if l.startswith('Model name')), 'unknown')
bf16 = 'avx512_bf16' in open('/proc/cpuinfo').read()
times = {s: [float(v) for v in open(os.path.join(work, s + '.time')).read().split()[-3:]] for s in ('nnunet', 'mlseg')}
labels = json.load(open(os.path.join(model, 'dataset.json')))['labels']
agree, total, dice = 0, 0, {}
for f in sorted(glob.glob(os.path.join(work, 'nnunet', '*.nii.gz'))):
    a = np.asarray(nib.load(f).dataobj)
    b = np.asarray(nib.load(os.path.join(work, 'mlseg', os.path.basename(f))).dataobj)
    agree += int((a == b).sum()); total += a.size
    for k, v in labels.items():
        if k in ('background', 'ignore'):
            continue
        values = v if isinstance(v, list) else [v]  # a region is the union of its labels
        x, y = np.isin(a, values), np.isin(b, values)
        dice.setdefault(k, []).append(2 * (x & y).sum() / max(1, x.sum() + y.sum()))
print('CPU: %s, %d cores, avx512_bf16: %s' % (name, os.cpu_count(), 'yes' if bf16 else 'no'))
print('%-8s %8s %8s' % ('side', 'wall s', 'CPU s'))
for s in ('nnunet', 'mlseg'):
    print('%-8s %8.1f %8.1f' % (s, times[s][0], times[s][1] + times[s][2]))
print('mlseg / nnU-Net wall time: %.2f' % (times['mlseg'][0] / times['nnunet'][0]))
print('label maps: %.5f %% of voxels equal; Dice(nnU-Net, mlseg) per label: %s' % (
    100.0 * agree / max(1, total), ', '.join('%s %.4f' % (k, np.mean(v)) for k, v in dice.items())))
PY
