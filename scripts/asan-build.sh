#!/usr/bin/env bash
# Configures (once) and builds targets of build-asan/: mlseg's code with ASan + UBSan, the unit-test
# subset (mlseg_sanitize_tests, scripts/sanitize.sh) and, with clang++, the libFuzzer targets
# (scripts/fuzz.sh). One folder for both so CI compiles the lower stages once.
#   scripts/asan-build.sh TARGET...
#   MLSEG_ASAN_BUILD_DIR=DIR   build folder (default build-asan)
#   MLSEG_BUILD_LOCK=FILE      build under `flock FILE` (machines shared with other builds)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${MLSEG_ASAN_BUILD_DIR:-build-asan}"

locked() {
  if [ -n "${MLSEG_BUILD_LOCK:-}" ]; then flock "$MLSEG_BUILD_LOCK" "$@"; else "$@"; fi
}

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  compiler=()
  fuzz=OFF
  if command -v clang++ > /dev/null; then
    compiler=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++)
    fuzz=ON
  else
    echo "asan-build: clang++ is missing (Debian: clang, libclang-rt-14-dev): sanitizers with g++, no fuzz targets"
  fi
  # -O1 -g1: readable stack traces at a fraction of -O0's run time; asserts stay on (no NDEBUG).
  locked cmake -S . -B "$BUILD_DIR" -G Ninja ${compiler[@]+"${compiler[@]}"} \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" \
    -DMLSEG_SANITIZE=ON -DMLSEG_FUZZ=$fuzz -DMLSEG_BUILD_BENCH=OFF > /dev/null
fi
locked cmake --build "$BUILD_DIR" --parallel "$(nproc)" --target "$@"
