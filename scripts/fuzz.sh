#!/usr/bin/env bash
# libFuzzer runs of mlseg's readers (tests/fuzz/): builds them in build-asan/ (scripts/asan-build.sh:
# clang++, -DMLSEG_FUZZ=ON, ASan + UBSan + libFuzzer) when needed and fuzzes for a bounded time.
#   scripts/fuzz.sh TARGET SECONDS   one target (nifti_fuzz, npy_fuzz, dataset_json_fuzz,
#                                    plans_json_fuzz, splits_json_fuzz, image_2d_fuzz)
#   scripts/fuzz.sh all SECONDS      each target for SECONDS
#   scripts/fuzz.sh --make-corpus    rewrites tests/fuzz/corpus/ (the committed seeds)
#   MLSEG_ASAN_BUILD_DIR=DIR         build folder (default build-asan)
#   MLSEG_BUILD_LOCK=FILE            build under `flock FILE` (machines shared with other builds)
#   MLSEG_FUZZ_ADVISORY="TARGET ..."   targets whose findings are printed as ADVISORY but do not make
#                                    the script fail (CI: image_2d_fuzz, whose findings so far are
#                                    all inside ITK 5.2's TIFF and PNG readers; see README)
#   MLSEG_FUZZ_SEED=S, MLSEG_FUZZ_RUNS=N   libFuzzer's -seed and -runs: with both (CI's smoke), a run
#                                    is the same sequence of inputs on every machine, SECONDS only a
#                                    cap, so CI fails on a finding, not on a faster machine's luck
# Prints executions and crashes per target; exits 1 when a target found something. Findings are
# saved in BUILD_DIR/artifacts/TARGET/ (reproduce: BUILD_DIR/fuzz/TARGET FILE); new inputs the
# fuzzer found interesting grow BUILD_DIR/corpus/TARGET/, never the committed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${MLSEG_ASAN_BUILD_DIR:-build-asan}"
TARGETS=(nifti_fuzz npy_fuzz dataset_json_fuzz plans_json_fuzz splits_json_fuzz image_2d_fuzz)
# libFuzzer's limits: an input that needs more memory than this (one allocation or in all) is a
# finding, as is one that takes longer than TIMEOUT_S (a hostile header must be refused before
# anything large is allocated or read).
RSS_LIMIT_MB=2048
MALLOC_LIMIT_MB=1024
TIMEOUT_S=30

die() { echo "fuzz: $*" >&2; exit 2; }
usage() { die "usage: scripts/fuzz.sh TARGET|all SECONDS, or scripts/fuzz.sh --make-corpus (targets: ${TARGETS[*]})"; }

build() {
  command -v clang++ > /dev/null || die "clang++ is missing (Debian: clang, libclang-rt-14-dev; scripts/install-deps.sh)"
  if [ -f "$BUILD_DIR/CMakeCache.txt" ] && ! grep -q '^MLSEG_FUZZ:BOOL=ON' "$BUILD_DIR/CMakeCache.txt"; then
    die "$BUILD_DIR was configured without MLSEG_FUZZ (no clang++ then?): remove it and rerun"
  fi
  bash scripts/asan-build.sh "$@"
}

# Uninstrumented LibTorch and ITK share the process: ASan's ODR check would flag their duplicate
# globals (not mlseg's), so it is off; leaks stay on (libFuzzer reports an input that leaks), less
# ITK's own (tests/sanitizers/lsan.supp).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/sanitizers/lsan.supp}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

if [ "${1:-}" = "--make-corpus" ]; then
  build make_fuzz_corpus
  rm -rf tests/fuzz/corpus
  "$BUILD_DIR/fuzz/make_fuzz_corpus" tests/fuzz/corpus
  du -sh tests/fuzz/corpus/*
  exit 0
fi

[ $# -eq 2 ] || usage
target="$1"
seconds="$2"
[[ "$seconds" =~ ^[0-9]+$ ]] || usage
if [ "$target" = all ]; then
  selected=("${TARGETS[@]}")
else
  [[ " ${TARGETS[*]} " == *" $target "* ]] || usage
  selected=("$target")
fi
build "${selected[@]}"

failed=()
for name in "${selected[@]}"; do
  corpus="$BUILD_DIR/corpus/$name"
  artifacts="$BUILD_DIR/artifacts/$name"
  log="$BUILD_DIR/logs/$name.log"
  rm -rf "$artifacts"  # only this run's findings are listed
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  scratch="$(mktemp -d)"
  set +e
  fixed=()
  [ -n "${MLSEG_FUZZ_SEED:-}" ] && fixed+=(-seed="$MLSEG_FUZZ_SEED")
  [ -n "${MLSEG_FUZZ_RUNS:-}" ] && fixed+=(-runs="$MLSEG_FUZZ_RUNS")
  TMPDIR="$scratch" "$BUILD_DIR/fuzz/$name" ${fixed[@]+"${fixed[@]}"} -max_total_time="$seconds" -rss_limit_mb="$RSS_LIMIT_MB" \
    -malloc_limit_mb="$MALLOC_LIMIT_MB" -timeout="$TIMEOUT_S" -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" "tests/fuzz/corpus/$name" > "$log" 2>&1
  rc=$?
  set -e
  rm -rf "$scratch"
  executions="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)"
  if [ -z "$executions" ]; then
    executions="$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')"
  fi
  finding="$(grep -m 1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY:|terminate called|out-of-memory|timeout after' "$log" || true)"
  if [ "$rc" -eq 0 ]; then
    echo "fuzz: $name: ${executions:-0} executions (at most ${seconds} s${MLSEG_FUZZ_SEED:+, seed $MLSEG_FUZZ_SEED}), 0 crashes (corpus $(ls "$corpus" | wc -l) inputs)"
  elif [[ " ${MLSEG_FUZZ_ADVISORY:-} " == *" $name "* ]]; then
    echo "fuzz: $name: ${executions:-?} executions, ADVISORY FINDING (exit $rc, not failing: MLSEG_FUZZ_ADVISORY): ${finding:-see $log}"
    ls "$artifacts" | sed "s|^|fuzz:   reproduce: $BUILD_DIR/fuzz/$name $artifacts/|"
    grep -m 12 -E '^ +#[0-9]+ 0x' "$log" | sed 's|^|fuzz:   |' || true
  else
    failed+=("$name")
    echo "fuzz: $name: ${executions:-?} executions, FINDING (exit $rc): ${finding:-see $log}"
    ls "$artifacts" | sed "s|^|fuzz:   reproduce: $BUILD_DIR/fuzz/$name $artifacts/|"
    echo "fuzz:   log: $log"
    tail -n 40 "$log"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]}"
  exit 1
fi
