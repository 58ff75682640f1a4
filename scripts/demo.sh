#!/usr/bin/env bash
# Quick start, command 1: install what is missing, build, and run the main job: `mlseg demo`, the
# whole pipeline (synth -> verify -> analyze -> plan -> preprocess -> train -> predict -> evaluate
# -> report) on a synthetic 10-channel multi-label dataset, in about 8 minutes on 2 CPU cores.
# Extra arguments go to `mlseg demo` (e.g. --minutes 4, --out DIR, --dataset PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
start=$(date +%s)
bash scripts/build.sh -DMLSEG_BUILD_TESTS=OFF -DMLSEG_BUILD_BENCH=OFF
echo "== build: $(( $(date +%s) - start )) s"
./build/mlseg demo "$@"
