#!/usr/bin/env bash
# Unit tests under AddressSanitizer + UndefinedBehaviorSanitizer: builds mlseg_sanitize_tests in
# build-asan/ (scripts/asan-build.sh: -DMLSEG_SANITIZE=ON, clang++ when installed) and runs it; any
# report fails the run. Extra arguments go to the test executable (e.g. --gtest_filter=Npy*).
#
# The subset: the tests of the stages below preprocessing — core, labels, io, metrics, synth,
# verify, analysis, planning — and evaluation's torch-free scoring. That is where mlseg parses
# what users hand it (NIfTI/NRRD/PNG/TIFF headers and pixels, .npy, dataset.json, plans.json,
# splits) and indexes raw buffers itself (label codes, histograms, metrics, distance transforms),
# the code a memory error is most likely in. It links mlseg_lower (these stages only), so the
# build skips nn, data, training, inference and the CLI, which are LibTorch calls ASan cannot see
# into (LibTorch is not instrumented) and would take most of CI's 20 minutes to build on 2 cores.
# The real-data tests run too (about a minute under ASan; skipped without ../shared/data): they
# read the real NIfTI, PNG, TIFF and JPEG files. Left out: EvaluateCli, plan_cli_test and
# noitk_build_test, which run the mlseg executables (not built here).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${MLSEG_ASAN_BUILD_DIR:-build-asan}"
FILTER='-EvaluateCli.*'

start=$(date +%s)
bash scripts/asan-build.sh mlseg_sanitize_tests
echo "sanitize: build $(( $(date +%s) - start )) s"
# detect_odr_violation=0: LibTorch, ITK and GoogleTest are Debian's uninstrumented shared
# libraries; ASan's ODR check reports globals they define twice, not mlseg's. Leaks are checked,
# less those of ITK's own code listed (with reasons) in tests/sanitizers/lsan.supp.
# halt_on_error / -fno-sanitize-recover: the first report ends the run with a non-zero exit.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/sanitizers/lsan.supp}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
run_start=$(date +%s)
"$BUILD_DIR/tests/mlseg_sanitize_tests" --gtest_filter="$FILTER" "$@"
echo "sanitize: tests $(( $(date +%s) - run_start )) s, no sanitizer reports"
