#!/usr/bin/env bash
# One call that checks mlseg on a GPU machine (issue #20) and prints one JSON summary:
#   build (no ITK, all cores) -> mlseg synth -> analyze -> plan -> preprocess -> train (2 short epochs,
#   fp32, then bf16 on another fold) -> predict -> evaluate -> mlseg_bench (reference train step,
#   64^3 forward, 160^3 sliding window) -> the nnU-Net peer's train_step and sliding_window.
# Fits well inside 10 minutes on 16 cores. `--device cpu` is a dry run of the same steps at tiny
# sizes (CTest runs it: tests/scripts/gpu_check_dry_run.sh).
#
#   bash scripts/gpu-check.sh [--device cuda|cpu] [--jobs N] [--build-dir DIR] [--skip-build]
#                             [--out DIR] [--deps-dir DIR] [--no-peers] [--peers-dir DIR] [--no-bench]
#                             [--bench-filter REGEX]
#
# Progress goes to stderr, the JSON summary to stdout (one line; also OUT/summary.json). Each step's
# output is in OUT/logs/STEP.log. Exit 0 when every mlseg step passed and the summary is complete
# and NaN-free; 1 otherwise (the JSON says what failed). The nnU-Net peer is a reference, not a
# subject: a peer that cannot run (no ../shared/peers, no torch in python3) is reported and skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "gpu-check: $*" >&2; exit 1; }

device=cuda
jobs="$(nproc)"
build_dir=""
skip_build=0
out=""
deps_dir="${MLSEG_DEPS_DIR:-}"
run_peers=1
peers_dir="${MLSEG_PEERS_DIR:-}"
run_bench=1
bench_filter=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="${2:?--device needs cuda or cpu}"; shift 2 ;;
    --jobs) jobs="${2:?--jobs needs a number}"; shift 2 ;;
    --build-dir) build_dir="${2:?--build-dir needs a folder}"; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --deps-dir) deps_dir="${2:?--deps-dir needs a folder}"; shift 2 ;;
    --no-peers) run_peers=0; shift ;;
    --peers-dir) peers_dir="${2:?--peers-dir needs a folder}"; shift 2 ;;
    --no-bench) run_bench=0; shift ;;
    --bench-filter) bench_filter="${2:?--bench-filter needs a regex}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
case "$device" in cuda | cpu) ;; *) die "--device must be cuda or cpu, not '$device'" ;; esac
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive number, not '$jobs'"
command -v python3 > /dev/null || die "python3 is needed to read the logs and write the summary; install python3"

# The build folder: given, else build-gpu when building; when only checking, the first that holds
# the executables (build-gpu, build-noitk, build).
if [ -z "$build_dir" ]; then
  build_dir=build-gpu
  if [ "$skip_build" = 1 ]; then
    for candidate in build-gpu build-noitk build; do
      if [ -x "$candidate/mlseg" ] && [ -x "$candidate/mlseg-full" ]; then build_dir="$candidate"; break; fi
    done
  fi
fi
mkdir -p "$build_dir"
build_dir="$(cd "$build_dir" && pwd)"
[ -n "$out" ] || out="$build_dir/gpu-check"
# A folder of an earlier run is replaced; any other non-empty folder is left alone.
if [ -d "$out" ] && [ -n "$(ls -A "$out")" ]; then
  [ -f "$out/steps.tsv" ] || die "--out $out is not empty and not an earlier gpu-check output; give a new folder"
  rm -rf "$out"
fi
mkdir -p "$out/logs"
out="$(cd "$out" && pwd)"
# Deps carried from a machine with apt (scripts/fetch-build-deps.sh): given, or ./deps when it is there.
if [ -z "$deps_dir" ] && [ -f deps/manifest.txt ]; then deps_dir="$repo/deps"; fi

mlseg="$build_dir/mlseg"
bench_exe="$build_dir/bench/mlseg_bench"
steps_file="$out/steps.tsv"
: > "$steps_file"
have_nvidia_smi=0
if [ "$device" = cuda ] && command -v nvidia-smi > /dev/null; then have_nvidia_smi=1; fi

# Sizes: the cuda run is small enough for a few minutes yet keeps the GPU busy; the cpu dry run is tiny.
if [ "$device" = cuda ]; then
  synth_args=(--cases 8 --channels 4 --shape 64,128,128)
  plan_args=()
  train_args=(--epochs 2 --iters-per-epoch 25 --val-iterations 4 --val-min-patches-per-channel 2)
  predict_args=()
  threads="$jobs"
  step_limit=300
else
  synth_args=(--cases 4 --channels 3 --shape 16,32,32)
  plan_args=(--preset cpu --base-features 4 --max-features 16)
  train_args=(--epochs 2 --iters-per-epoch 2 --val-iterations 1 --val-min-patches-per-channel 1 --loader-workers 1)
  predict_args=(--disable-tta)
  threads=2
  step_limit=120
fi
custom_bench_filter="$bench_filter"
if [ -z "$bench_filter" ]; then
  if [ "$device" = cuda ]; then
    bench_filter='^BM_(TrainStepReference/[01]|ForwardReference64/[01]|SlidingWindow160/1/1)(/|$)'
  else
    # The reference workloads take minutes on a CPU: the dry run only lists them (to prove they are
    # registered) and times one fast benchmark through the same JSON path.
    bench_filter='^BM_CombinationHistogram10bit256$'
  fi
fi

now_ns() { date +%s%N; }
seconds_since() { local d=$(( $(now_ns) - $1 )); printf '%d.%03d' $((d / 1000000000)) $((d / 1000000 % 1000)); }

# run_step NAME LIMIT_S COMMAND...: runs COMMAND with its output in logs/NAME.log, under a time
# limit, samples GPU memory meanwhile (cuda), records NAME, exit code and seconds in steps.tsv.
run_step() {
  local name="$1" limit="$2"
  shift 2
  local log="$out/logs/$name.log" start sampler="" rc
  echo "gpu-check: $name ..." >&2
  if [ "$have_nvidia_smi" = 1 ]; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$out/logs/$name.gpu-memory.csv" 2> /dev/null &
    sampler=$!
  fi
  start="$(now_ns)"
  timeout --kill-after=15 "$limit" "$@" > "$log" 2>&1 &
  local pid=$! report_at=30
  # A progress line every 30 s for long steps (the build, training): the log's last line.
  while kill -0 "$pid" 2> /dev/null; do
    sleep 0.2
    if [ $(( ($(now_ns) - start) / 1000000000 )) -ge "$report_at" ]; then
      echo "gpu-check: $name running, $report_at s: $(tail -n 1 "$log" | tr '\r' '\n' | tail -n 1 | cut -c1-120)" >&2
      report_at=$((report_at + 30))
    fi
  done
  set +e
  wait "$pid"
  rc=$?
  set -e
  local seconds
  seconds="$(seconds_since "$start")"
  if [ -n "$sampler" ]; then kill "$sampler" 2> /dev/null || true; wait "$sampler" 2> /dev/null || true; fi
  printf '%s\t%s\t%s\n' "$name" "$rc" "$seconds" >> "$steps_file"
  if [ "$rc" -eq 0 ]; then
    echo "gpu-check: $name ok ($seconds s)" >&2
  else
    local why="exit $rc"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then why="timed out after $limit s"; fi
    echo "gpu-check: $name FAILED ($why, $seconds s); the end of $log:" >&2
    tail -n 15 "$log" | sed 's/^/    /' >&2
  fi
  return "$rc"
}
skip_step() { printf '%s\tskipped\t0\t%s\n' "$1" "$2" >> "$steps_file"; echo "gpu-check: $1 skipped: $2" >&2; }

echo "gpu-check: device $device, build $build_dir, output $out" >&2
if [ "$device" = cuda ]; then
  if [ "$have_nvidia_smi" = 1 ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/logs/gpu.txt" 2>&1 || true
    echo "gpu-check: GPU $(head -n 1 "$out/logs/gpu.txt")" >&2
  else
    echo "gpu-check: nvidia-smi not found: no peak GPU memory figures (the steps still run on cuda)" >&2
  fi
fi

# ---- build ----
build_ok=1
if [ "$skip_build" = 0 ]; then
  build_args=(-DMLSEG_WITH_ITK=OFF -DMLSEG_BUILD_TESTS=OFF -DMLSEG_BUILD_BENCH="$([ "$run_bench" = 1 ] && echo ON || echo OFF)")
  if [ "$device" = cuda ]; then
    # A CUDA LibTorch's CMake package enables the CUDA language: it needs nvcc. Find one that is not
    # on PATH (CUDA_HOME, /usr/local/cuda, pip's nvidia-cuda-nvcc wheels).
    if ! command -v nvcc > /dev/null; then
      site="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2> /dev/null || true)"
      nvcc_found=""
      for candidate in "${CUDA_HOME:-/nonexistent}/bin/nvcc" /usr/local/cuda/bin/nvcc "$site"/nvidia/*/bin/nvcc; do
        if [ -x "$candidate" ]; then nvcc_found="$candidate"; break; fi
      done
      if [ -n "$nvcc_found" ]; then
        echo "gpu-check: nvcc is not on PATH; using $nvcc_found" >&2
        build_args+=("-DCMAKE_CUDA_COMPILER=$nvcc_found" "-DCUDAToolkit_ROOT=$(dirname "$(dirname "$nvcc_found")")")
      else
        echo "gpu-check: warning: no nvcc found (PATH, CUDA_HOME, /usr/local/cuda, pip's nvidia wheels); a CUDA" \
          "LibTorch's CMake package may refuse to configure without the CUDA toolkit" >&2
      fi
    fi
  fi
  if [ -n "$deps_dir" ]; then
    echo "gpu-check: build dependencies from $deps_dir" >&2
    export MLSEG_DEPS_DIR="$deps_dir"
  elif ! command -v dpkg-query > /dev/null || ! dpkg-query -W nlohmann-json3-dev > /dev/null 2>&1; then
    echo "gpu-check: warning: no --deps-dir and no ./deps; if CMake misses nlohmann_json, CLI11, GTest or benchmark," \
      "fill a folder with scripts/fetch-build-deps.sh on a machine with apt and pass --deps-dir" >&2
  fi
  run_step build 540 env MLSEG_BUILD_DIR="$build_dir" MLSEG_BUILD_JOBS="$jobs" bash scripts/build.sh "${build_args[@]}" ||
    build_ok=0
else
  skip_step build "--skip-build"
fi
if [ ! -x "$mlseg" ] || [ ! -x "$build_dir/mlseg-full" ]; then
  build_ok=0
  echo "gpu-check: $build_dir has no mlseg and mlseg-full; build it (drop --skip-build) or pass --build-dir" >&2
fi

# ---- the pipeline ----
dataset="$out/data/Dataset990_GpuCheck"
work="$out/work"
results="$work/Dataset990_GpuCheck/results/3d_fullres"
pipeline_ok="$build_ok"
pipeline() {  # pipeline NAME COMMAND...: one stage, skipped once a stage before it failed
  local name="$1"
  shift
  if [ "$pipeline_ok" = 0 ]; then
    skip_step "$name" "an earlier step failed"
    return 0
  fi
  run_step "$name" "$step_limit" "$@" || pipeline_ok=0
}
common=(--threads "$threads")
pipeline synth "$mlseg" synth "$dataset" "${synth_args[@]}" --name GpuCheck --seed 0 "${common[@]}" -q
pipeline analyze "$mlseg" analyze "$dataset" --work-dir "$work" --folds 2 "${common[@]}" -q
pipeline plan "$mlseg" plan "$dataset" --work-dir "$work" ${plan_args[@]+"${plan_args[@]}"} "${common[@]}" -q
pipeline preprocess "$mlseg" preprocess "$dataset" --work-dir "$work" "${common[@]}" -q
# fp32 trains fold 0, bf16 fold 1: both models and logs stay. bf16 runs even when fp32 failed
# (it tells more about a device problem); predict needs fold 0.
prepared_ok="$pipeline_ok"
pipeline train_fp32 "$mlseg" train "$dataset" --work-dir "$work" -f 0 "${train_args[@]}" --precision fp32 \
  --device "$device" --seed 0 "${common[@]}"
fp32_ok="$pipeline_ok"
pipeline_ok="$prepared_ok"
pipeline train_bf16 "$mlseg" train "$dataset" --work-dir "$work" -f 1 "${train_args[@]}" --precision bf16 \
  --device "$device" --seed 0 "${common[@]}"
pipeline_ok="$fp32_ok"
pipeline predict "$mlseg" predict -i "$dataset/imagesTr" -o "$out/predictions" -m "$results" -f 0 \
  ${predict_args[@]+"${predict_args[@]}"} --device "$device" "${common[@]}"
pipeline evaluate "$mlseg" evaluate --ref "$dataset" --pred "$out/predictions" \
  --pred-dataset-json "$out/predictions/dataset.json" --metrics dice,iou "${common[@]}" -q

# ---- benchmarks ----
if [ "$run_bench" = 0 ]; then
  skip_step bench "--no-bench"
elif [ ! -x "$bench_exe" ]; then
  printf 'bench\t1\t0\n' >> "$steps_file"
  echo "gpu-check: bench FAILED: $bench_exe is missing (build with -DMLSEG_BUILD_BENCH=ON, or pass --no-bench)" >&2
else
  # The reference workloads must exist under the names the issue gives, whatever runs.
  run_step bench_list 60 "$bench_exe" --benchmark_list_tests=true \
    '--benchmark_filter=^BM_(TrainStepReference|ForwardReference64|SlidingWindow160)/' || true
  run_step bench 420 env MLSEG_BENCH_DEVICE="$device" "$bench_exe" "--benchmark_filter=$bench_filter" \
    --benchmark_min_time=0.05 --benchmark_out="$out/bench.json" --benchmark_out_format=json || true
fi

# ---- the nnU-Net peer (a reference: failures are reported, not fatal) ----
# The kit: given, else ../shared/peers, else deps/peers (a copy carried with the deps to a machine
# without ../shared).
if [ -z "$peers_dir" ]; then
  peers_dir="$repo/../shared/peers"
  [ -x "$peers_dir/run" ] || [ ! -x "$repo/deps/peers/run" ] || peers_dir="$repo/deps/peers"
fi
peers_dir="$(cd "$peers_dir" 2> /dev/null && pwd || echo "$peers_dir")"
peer_python=""
if [ "$run_peers" = 0 ]; then
  skip_step peer_train_step "--no-peers"
  skip_step peer_sliding_window "--no-peers"
elif [ ! -x "$peers_dir/run" ]; then
  skip_step peer_train_step "no $peers_dir/run (the nnU-Net peer kit is not on this machine; --peers-dir DIR)"
  skip_step peer_sliding_window "no $peers_dir"
else
  # ../shared/peers/run uses /usr/bin/python3; on a machine whose torch lives in another python3
  # (pip, conda), run the same scripts with that one and the same environment. MLSEG_PEER_PYTHON
  # names the interpreter.
  torch_check='import torch, sys; sys.exit(0 if "'"$device"'" == "cpu" or torch.cuda.is_available() else 1)'
  for candidate in ${MLSEG_PEER_PYTHON:-/usr/bin/python3 "$(command -v python3)"}; do
    if [ -x "$candidate" ] && "$candidate" -c "$torch_check" > /dev/null 2>&1; then peer_python="$candidate"; break; fi
  done
  if [ -z "$peer_python" ]; then
    skip_step peer_train_step "no python3 with torch$([ "$device" = cuda ] && echo " and CUDA")"
    skip_step peer_sliding_window "no python3 with torch"
  else
    train_step_args=(--device "$device")
    window_args=(--device "$device" --modes nomirror)
    if [ "$device" = cpu ]; then
      train_step_args+=(--reps 1 --warmup 0 --infer-reps 1)
      window_args+=(--reps 1)
    fi
    if [ "$peer_python" = /usr/bin/python3 ]; then
      run_step peer_train_step 300 "$peers_dir/run" train_step "${train_step_args[@]}" || true
      run_step peer_sliding_window 300 "$peers_dir/run" sliding_window "${window_args[@]}" || true
    else
      # What ../shared/peers/run does, with the python3 that has torch.
      peers_work="${PEERS_WORK:-/tmp/mlseg-peers}"
      python_env=(env "PEERS_WORK=$peers_work" "PYTHONPATH=$peers_dir/stubs:$peers_dir/vendor${PYTHONPATH:+:$PYTHONPATH}"
        PYTHONDONTWRITEBYTECODE=1 "$peer_python")
      if [ ! -f "${PEERS_DATA:-$peers_work/data}/manifest.json" ]; then
        run_step peer_data 300 "${python_env[@]}" "$peers_dir/bench/make_data.py" || true
      fi
      run_step peer_train_step 300 "${python_env[@]}" "$peers_dir/bench/train_step.py" "${train_step_args[@]}" || true
      run_step peer_sliding_window 300 "${python_env[@]}" "$peers_dir/bench/sliding_window.py" "${window_args[@]}" || true
    fi
  fi
fi

# ---- the summary ----
set +e
custom_filter=0
[ -n "$custom_bench_filter" ] && custom_filter=1
python3 - "$out" "$device" "$build_dir" "$work" "$results" "$run_bench" "$have_nvidia_smi" "$custom_filter" \
  > "$out/summary.line" 2> "$out/logs/summary.err" << 'PY'
import glob, json, math, os, re, sys

out, device, build_dir, work, results, run_bench, have_smi, custom_filter = sys.argv[1:9]
problems = []

# Steps: name, exit code (or skipped), seconds.
steps = {}
for line in open(os.path.join(out, 'steps.tsv')):
    fields = line.rstrip('\n').split('\t')
    name, rc, seconds = fields[0], fields[1], float(fields[2])
    entry = {'exit_code': None if rc == 'skipped' else int(rc), 'seconds': round(seconds, 3)}
    if rc == 'skipped':
        entry['skipped'] = fields[3] if len(fields) > 3 else 'skipped'
    steps[name] = entry
mlseg_steps = ['synth', 'analyze', 'plan', 'preprocess', 'train_fp32', 'train_bf16', 'predict', 'evaluate']
required = (['build'] if 'skipped' not in steps.get('build', {}) else []) + mlseg_steps
if run_bench == '1':
    required += ['bench_list', 'bench']
for name in required:
    s = steps.get(name)
    if s is None or s['exit_code'] != 0:
        why = 'not run' if s is None else s.get('skipped') or 'exit %s' % s['exit_code']
        problems.append('step %s failed (%s)' % (name, why))

def peak_mib(step):
    path = os.path.join(out, 'logs', step + '.gpu-memory.csv')
    values = []
    if os.path.exists(path):
        for line in open(path):
            line = line.strip().split(',')[0].strip()
            if line.isdigit():
                values.append(int(line))
    return max(values) if values else None

def finite(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

# Training: iterations/s and the loader's wait share, from log.jsonl of each fold.
train = {}
for precision, fold in (('fp32', 0), ('bf16', 1)):
    log = os.path.join(results, 'fold_%d' % fold, 'log.jsonl')
    if not os.path.exists(log):
        if steps.get('train_' + precision, {}).get('exit_code') == 0:
            problems.append('train %s wrote no %s' % (precision, log))
        continue
    records = []
    for number, line in enumerate(open(log), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            problems.append('train %s: %s line %d is not JSON' % (precision, log, number))
    iterations = sum(r.get('iterations', 0) for r in records)
    train_s = sum(r.get('train_seconds', 0.0) for r in records)
    wait_s = sum(r.get('data_wait_seconds', 0.0) for r in records)
    last = records[-1] if records else {}
    entry = {
        'epochs': len(records),
        'iterations': iterations,
        'train_seconds': round(train_s, 3),
        'iterations_per_s': round(iterations / train_s, 3) if train_s > 0 else None,
        # The first epoch pays for cuDNN's algorithm search and the allocator's growth.
        'iterations_per_s_last_epoch': (round(last['iterations'] / last['train_seconds'], 3)
                                        if last.get('train_seconds') else None),
        'loader_wait_share': round(wait_s / train_s, 4) if train_s > 0 else None,
        'skipped_steps': sum(r.get('skipped_steps', 0) for r in records),
        'final_train_loss': last.get('train_loss'),
    }
    # Whatever memory figures training itself logs (e.g. the CUDA caching allocator's peak).
    memory = {k: v for k, v in last.items() if 'memory' in k.lower()}
    if memory:
        entry['log_memory'] = memory
    for key in ('iterations_per_s', 'loader_wait_share'):
        if not finite(entry[key]):
            problems.append('train %s: %s is missing' % (precision, key))
    if entry['skipped_steps']:
        problems.append('train %s skipped %d non-finite steps' % (precision, entry['skipped_steps']))
    train[precision] = entry
plans = os.path.join(work, 'Dataset990_GpuCheck', 'plans.json')
if os.path.exists(plans):
    config = json.load(open(plans)).get('configurations', {}).get('3d_fullres', {})
    train['patch_size'] = config.get('patch_size')
    train['batch_size'] = config.get('batch_size')

# Evaluate: the mean Dice over channels.
evaluation = {}
summary_path = os.path.join(out, 'predictions', 'summary.json')
if os.path.exists(summary_path):
    summary = json.load(open(summary_path))
    fg = summary.get('foreground_mean', {})
    evaluation['foreground_mean_dice'] = fg.get('Dice')
    evaluation['cases'] = len(summary.get('metric_per_case', []))
elif steps.get('evaluate', {}).get('exit_code') == 0:
    problems.append('evaluate wrote no %s' % summary_path)

# Benchmarks: seconds per iteration of each run.
bench = {}
bench_path = os.path.join(out, 'bench.json')
if os.path.exists(bench_path):
    for b in json.load(open(bench_path)).get('benchmarks', []):
        if b.get('run_type') == 'aggregate':
            continue
        scale = {'ns': 1e-9, 'us': 1e-6, 'ms': 1e-3, 's': 1.0}[b.get('time_unit', 'ns')]
        entry = {'seconds': b['real_time'] * scale, 'iterations': b.get('iterations')}
        if b.get('error_occurred'):
            entry = {'error': b.get('error_message', 'error')}
            problems.append('benchmark %s: %s' % (b['name'], entry['error']))
        elif not finite(entry['seconds']):
            problems.append('benchmark %s has no time' % b['name'])
        else:
            entry['seconds'] = round(entry['seconds'], 6)
            entry['per_s'] = round(1.0 / entry['seconds'], 3) if entry['seconds'] > 0 else None
        bench[b['name']] = entry
    if run_bench == '1' and not bench:
        problems.append('mlseg_bench ran no benchmark')
elif run_bench == '1':
    problems.append('mlseg_bench wrote no %s' % bench_path)
listed_path = os.path.join(out, 'logs', 'bench_list.log')
if os.path.exists(listed_path):
    listed = open(listed_path).read()
    for name in ('BM_TrainStepReference/0', 'BM_ForwardReference64/0', 'BM_SlidingWindow160/1/1'):
        if name not in listed:
            problems.append('mlseg_bench has no %s' % name)

# The nnU-Net peer: its last stdout line is JSON.
def peer_json(step):
    path = os.path.join(out, 'logs', step + '.log')
    if steps.get(step, {}).get('exit_code') != 0 or not os.path.exists(path):
        return None
    for line in reversed(open(path).read().splitlines()):
        if line.startswith('{'):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None
nnunet = {}
ratios = {}
peer_train = peer_json('peer_train_step')
if peer_train:
    nnunet['train_step_s'] = peer_train['train_iter']['median_s']
    nnunet['forward_64_s'] = peer_train['infer_fwd_1x64cube']['median_s']
    nnunet['torch'] = peer_train.get('env', {}).get('torch')
peer_window = peer_json('peer_sliding_window')
if peer_window and 'nomirror' in peer_window:
    nnunet['sliding_window_160_s'] = peer_window['nomirror']['median_s']
def ratio(mlseg_prefix, nnunet_key):
    runs = [b for name, b in bench.items() if name.startswith(mlseg_prefix)]
    m = runs[0].get('seconds') if runs else None
    n = nnunet.get(nnunet_key)
    return round(m / n, 3) if finite(m) and finite(n) and n > 0 else None
for key, mlseg_name, nnunet_key in (
        ('train_step_fp32', 'BM_TrainStepReference/0/', 'train_step_s'),
        ('train_step_bf16', 'BM_TrainStepReference/1/', 'train_step_s'),
        ('forward_64_fp32', 'BM_ForwardReference64/0/', 'forward_64_s'),
        ('forward_64_bf16', 'BM_ForwardReference64/1/', 'forward_64_s'),
        ('sliding_window_160', 'BM_SlidingWindow160/1/1/', 'sliding_window_160_s')):
    value = ratio(mlseg_name, nnunet_key)
    if device == 'cuda' and run_bench == '1' and custom_filter == '0' and \
            not any(name.startswith(mlseg_name) for name in bench):
        problems.append('benchmark %s did not run' % mlseg_name)
    if value is not None:
        ratios[key] = value
if nnunet:
    nnunet['precision'] = 'fp16 autocast' if device == 'cuda' else 'fp32'
    ratios['meaning'] = 'mlseg seconds / nnU-Net seconds on the same workload (< 1: mlseg is faster)'

# No "nan" anywhere in what mlseg wrote: its step logs, the work folder's JSON/CSV/logs, predictions.
nan = re.compile(r'\bnan\b', re.IGNORECASE)
checked, hits = 0, []
candidates = [os.path.join(out, 'logs', s + '.log') for s in mlseg_steps + ['bench']]
for root in (work, os.path.join(out, 'predictions')):
    for pattern in ('*.json', '*.jsonl', '*.csv', '*.txt', '*.svg', '*.html'):
        candidates += glob.glob(os.path.join(root, '**', pattern), recursive=True)
candidates.append(bench_path)
for path in candidates:
    if not os.path.isfile(path):
        continue
    checked += 1
    with open(path, errors='replace') as f:
        for number, line in enumerate(f, 1):
            if nan.search(line):
                hits.append('%s:%d' % (os.path.relpath(path, out), number))
if hits:
    problems.append('not-a-number text in mlseg output: ' + ', '.join(hits[:10]))

gpu = None
gpu_txt = os.path.join(out, 'logs', 'gpu.txt')
if os.path.exists(gpu_txt):
    gpu = open(gpu_txt).read().strip() or None
# Peak GPU memory per step (nvidia-smi: the whole GPU), and the largest.
peaks = {s: peak_mib(s) for s in steps if peak_mib(s) is not None}
if peaks:
    peaks = dict(overall=max(peaks.values()), **peaks)
elif have_smi == '1':
    problems.append('nvidia-smi gave no memory samples')
result = {
    'ok': not problems,
    'device': device,
    'gpu': gpu,
    'build_dir': build_dir,
    'train': train,
    'evaluate': evaluation,
    'bench': bench,
    'nnunet': nnunet,
    'ratio_vs_nnunet': ratios,
    'peak_gpu_memory_mib': peaks or None,
    'nan_check': {'files_checked': checked, 'nan_found': len(hits)},
    'steps': steps,
    'problems': problems,
}
text = json.dumps(result, sort_keys=False)
if nan.search(text):
    result['problems'].append('not-a-number text in the summary itself')
    result['ok'] = False
    text = json.dumps(result)
with open(os.path.join(out, 'summary.json'), 'w') as f:
    json.dump(result, f, indent=2)
print(text)
sys.exit(0 if result['ok'] else 1)
PY
summary_rc=$?
set -e
if [ ! -s "$out/summary.line" ]; then
  # The summary script itself failed: still one JSON line, saying so.
  cat "$out/logs/summary.err" >&2
  printf '{"ok": false, "device": "%s", "problems": ["the summary could not be written: %s/logs/summary.err"]}\n' \
    "$device" "$out" > "$out/summary.line"
  summary_rc=1
fi
cat "$out/summary.line"
if [ "$summary_rc" -ne 0 ]; then
  echo "gpu-check: FAILED (see \"problems\" above; logs in $out/logs)" >&2
  exit 1
fi
echo "gpu-check: all steps passed; summary in $out/summary.json" >&2
