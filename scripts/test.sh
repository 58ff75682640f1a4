#!/usr/bin/env bash
# Quick start, command 2: install what is missing, build everything, run the whole test suite.
# Also proves the ITK-free build (MLSEG_WITH_ITK=OFF) still compiles and runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
start=$(date +%s)
bash scripts/build.sh -DMLSEG_BUILD_TESTS=ON -DMLSEG_BUILD_BENCH=ON
echo "== build: $(( $(date +%s) - start )) s"

echo "== configure and build without ITK (build-noitk/)"
cmake -S . -B build-noitk -G Ninja -DCMAKE_BUILD_TYPE=Release -DMLSEG_WITH_ITK=OFF \
  -DMLSEG_BUILD_TESTS=OFF -DMLSEG_BUILD_BENCH=ON > /dev/null
cmake --build build-noitk --parallel "$(nproc)"
./build-noitk/mlseg --version
set +e
./build-noitk/mlseg synth build-noitk/phantom-check --cases 1 -q 2> build-noitk/synth.err
noitk_rc=$?
set -e
if [ "$noitk_rc" -ne 2 ] || ! grep -q "without ITK" build-noitk/synth.err; then
  echo "the ITK-free build did not report the missing image I/O cleanly (exit $noitk_rc):"
  cat build-noitk/synth.err
  exit 1
fi
echo "== ITK-free build OK: $(( $(date +%s) - start )) s"

cd build
ctest --output-on-failure --timeout 900 -j "$(nproc)"
