#!/usr/bin/env bash
# CTest gpu_check_dry_run: scripts/gpu-check.sh --device cpu (the GPU check's steps at tiny sizes)
# must pass and print a complete, NaN-free JSON summary.
#   tests/scripts/gpu_check_dry_run.sh THIS_BUILD_DIR OUT_DIR
# Which executables: ../build-noitk when it exists, is not older than this build and writes NIfTI
# (the GPU machine builds without ITK, and scripts/test.sh builds build-noitk before ctest);
# otherwise this build's own.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: gpu_check_dry_run.sh THIS_BUILD_DIR OUT_DIR" >&2; exit 2; }
source_dir="$(cd "$(dirname "$0")/../.." && pwd)"
this_build="$(cd "$1" && pwd)"
out="$2"
rm -rf "$out"
mkdir -p "$out"

build="$this_build"
noitk="$source_dir/build-noitk"
if [ -x "$noitk/mlseg" ] && [ -x "$noitk/mlseg-full" ]; then
  if [ "$noitk/mlseg-full" -ot "$this_build/mlseg-full" ]; then
    echo "dry run: build-noitk is older than $this_build; using $this_build (rebuild build-noitk to test it)"
  elif ! "$noitk/mlseg" synth "$out/nifti-probe" --cases 1 --shape 2,4,4 -q > "$out/nifti-probe.log" 2>&1; then
    echo "dry run: build-noitk cannot write NIfTI ($(tail -n 1 "$out/nifti-probe.log")); using $this_build"
  else
    build="$noitk"
  fi
fi
flags=(--device cpu --skip-build --build-dir "$build" --no-peers --out "$out/run")
if [ ! -x "$build/bench/mlseg_bench" ]; then
  echo "dry run: $build has no bench/mlseg_bench (MLSEG_BUILD_BENCH=OFF); benchmarks left out"
  flags+=(--no-bench)
fi
echo "dry run: bash scripts/gpu-check.sh ${flags[*]}"
set +e
bash "$source_dir/scripts/gpu-check.sh" "${flags[@]}" > "$out/stdout.txt"
rc=$?
set -e
cat "$out/stdout.txt"
[ "$rc" -eq 0 ] || { echo "dry run: gpu-check.sh exited $rc"; exit 1; }

# The summary, read independently of gpu-check's own verdict.
python3 - "$out/stdout.txt" << 'PY'
import json, math, re, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
if len(lines) != 1:
    sys.exit('dry run: stdout must be exactly one JSON line, got %d lines' % len(lines))
if re.search(r'\bnan\b', lines[0], re.IGNORECASE):
    sys.exit('dry run: "nan" in the summary')
summary = json.loads(lines[0])
problems = list(summary.get('problems', []))
if summary.get('ok') is not True:
    problems.append('ok is not true')
for name, step in summary['steps'].items():
    if 'skipped' not in step and step.get('exit_code') != 0:
        problems.append('step %s exited %s' % (name, step.get('exit_code')))
for step in ('synth', 'analyze', 'plan', 'preprocess', 'train_fp32', 'train_bf16', 'predict', 'evaluate'):
    if summary['steps'].get(step, {}).get('exit_code') != 0:
        problems.append('step %s did not run' % step)
for precision in ('fp32', 'bf16'):
    train = summary['train'].get(precision, {})
    speed, wait = train.get('iterations_per_s'), train.get('loader_wait_share')
    if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
        problems.append('train %s: iterations_per_s is %r' % (precision, speed))
    if not (isinstance(wait, (int, float)) and 0 <= wait <= 1):
        problems.append('train %s: loader_wait_share is %r' % (precision, wait))
dice = summary['evaluate'].get('foreground_mean_dice')
if not (isinstance(dice, (int, float)) and 0 <= dice <= 1):
    problems.append('evaluate: foreground_mean_dice is %r' % dice)
if summary['nan_check'].get('nan_found') != 0 or summary['nan_check'].get('files_checked', 0) == 0:
    problems.append('nan check: %r' % summary['nan_check'])
if 'skipped' not in summary['steps'].get('bench', {'skipped': ''}) and not any(
        k.startswith('BM_') for k in summary['bench']):
    problems.append('bench ran but reported no benchmark')
if problems:
    sys.exit('dry run: ' + '; '.join(problems))
print('dry run: summary complete (%d steps)' % len(summary['steps']))
PY
