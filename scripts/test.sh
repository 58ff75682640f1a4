#!/usr/bin/env bash
# Quick start, command 2: install what is missing, build everything, run the whole test suite.
# Also builds the ITK-free build (MLSEG_WITH_ITK=OFF, build-noitk/: NIfTI through mlseg's own
# reader and writer), which tests/io/noitk_build_test.cpp compares with the ITK build, and ends with
# the sanitizer run and the fuzz smoke (build-asan/).
#   MLSEG_FUZZ_SECONDS=N   seconds per fuzz target in the fuzz smoke (default 60)
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
# Without ITK, mlseg reads and writes NIfTI itself; other formats are refused with a clear message.
# (tests/io/noitk_build_test.cpp compares this build's files and results with the ITK build's.)
rm -rf build-noitk/phantom-check build-noitk/phantom-png
./build-noitk/mlseg synth build-noitk/phantom-check --cases 2 --shape 12,20,16 -q
./build-noitk/mlseg verify build-noitk/phantom-check > build-noitk/verify.out
set +e
./build-noitk/mlseg synth build-noitk/phantom-png --cases 1 --shape 1,16,16 --file-ending .png -q 2> build-noitk/synth.err
noitk_rc=$?
set -e
if [ "$noitk_rc" -eq 0 ] || ! grep -q "without ITK" build-noitk/synth.err; then
  echo "the ITK-free build did not refuse PNG cleanly (exit $noitk_rc):"
  cat build-noitk/synth.err
  exit 1
fi
echo "== ITK-free build OK: $(( $(date +%s) - start )) s"

(cd build && ctest --output-on-failure --timeout 900 -j "$(nproc)")

# Issue #22. Both sections fail the script on a finding. Measured on 2 shared cores: build-asan/
# from scratch about 9 min, the sanitizer tests 100 s, the fuzz smoke 6 x 60 s: about 17 min.
echo "== sanitizers: the lower stages' unit tests under ASan + UBSan (build-asan/; scripts/sanitize.sh says which)"
start=$(date +%s)
bash scripts/sanitize.sh
echo "== sanitizers: $(( $(date +%s) - start )) s"

fuzz_seconds="${MLSEG_FUZZ_SECONDS:-60}"
echo "== fuzz smoke: each libFuzzer target of tests/fuzz for $fuzz_seconds s (build-asan/; scripts/fuzz.sh)"
start=$(date +%s)
# image_2d_fuzz is advisory: what it finds lies inside ITK 5.2's bundled TIFF/PNG readers, one
# hole after another (each found so far is fixed by a check before ITK; README, Sanitizers and
# fuzzing); mlseg's own parsers' targets fail the script on any finding.
MLSEG_FUZZ_ADVISORY="${MLSEG_FUZZ_ADVISORY-image_2d_fuzz}" bash scripts/fuzz.sh all "$fuzz_seconds"
echo "== fuzz smoke: $(( $(date +%s) - start )) s"
