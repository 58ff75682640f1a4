#!/usr/bin/env bash
# Quick start, command 1: install what is missing, build, and run the main job on synthetic data.
# Until `mlseg demo` exists this runs every stage that exists: synth -> verify -> analyze -> plan -> preprocess.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh -DMLSEG_BUILD_TESTS=OFF -DMLSEG_BUILD_BENCH=OFF
WORK="${MLSEG_WORK:-./mlseg_work}"
DATASET="$WORK/raw/Dataset900_Phantom"  # raw data apart from the stages' outputs in $WORK/Dataset900_Phantom
rm -rf "$DATASET"
echo "== mlseg synth: 12 phantom cases with 6 overlapping channels (nested, partial, disjoint, rare)"
./build/mlseg synth "$DATASET" --cases 12 --test-cases 2 --channels 6 --format regions --seed 1234
echo
echo "== mlseg verify: integrity checks of the phantom dataset"
./build/mlseg verify "$DATASET"
echo
echo "== mlseg analyze: fingerprint, label statistics, combinations, nesting, recommendations, stratified folds"
./build/mlseg analyze "$DATASET" --work-dir "$WORK" --overwrite-splits
echo
echo "== mlseg plan: nnU-Net's planning rules -> plans.json"
./build/mlseg plan "$DATASET" --work-dir "$WORK"
echo
echo "== mlseg preprocess: crop, normalise, resample, sampling locations -> the .npy store"
./build/mlseg preprocess "$DATASET" --work-dir "$WORK" -c 3d_fullres
