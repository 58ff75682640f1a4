#!/usr/bin/env bash
# Interleaved A/B timing: runs each benchmark binary in turn, ROUNDS times, and prints every
# time per binary and benchmark. This machine's speed drifts by up to 10 % over minutes, so two
# binaries are only comparable when their runs alternate within one sitting.
#   bench/ab.sh 'AugmentPatch128|SpatialForced128' 3 /tmp/mlseg_bench_before ./build/bench/mlseg_bench
set -euo pipefail
if [ "$#" -lt 3 ]; then
  echo "usage: $0 FILTER ROUNDS BINARY [BINARY ...]" >&2
  exit 2
fi
filter=$1
rounds=$2
shift 2
for _ in $(seq "$rounds"); do
  for binary in "$@"; do
    "$binary" --benchmark_filter="$filter" 2>/dev/null | awk -v b="$binary" '/^BM_/ {print b, $1, $2, $3}'
  done
done | sort -s -k1,2 | awk '{k = $1 "  " $2; t[k] = t[k] "  " $3 " " $4} END {for (k in t) print k t[k]}' | sort
