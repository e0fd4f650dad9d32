#!/usr/bin/env bash
# Everything a GPU visit must verify, in one call:
#   kernel warm-up (cold CuPy cache), the CUDA tests in parallel, the demo and the
#   examples on cuda, the GPU benchmarks against torch CUDA in the same run, fused-kernel
#   bandwidth against a device-to-device copy, the CUDA-graph replay, a one-rank NCCL
#   smoke test (collectives, a DDP step), and where W2's host time goes (gpu_host).
# - installs nothing (PYTHONPATH=$PWD; no network on that machine);
# - one shared deadline (GRADKIT_GPU_DEADLINE, default 450 s) across every step, each
#   step capped by what is left; a failing step never stops the next one;
# - at most 8 files in $OUT (7: summary.txt plus one file per step);
# - without a usable GPU: says what it skipped and exits 0 within seconds.
# Usage (device tool): run(command="bash scripts/gpu_check.sh", timeout_s=540)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${OUT:-/tmp/gradkit-gpu}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
py="${PYTHON:-python3}"
# GRADKIT_GPU_SHORT=1: a visit with under 4 minutes of device time left (190 s):
# no separate warm-up (16 test workers compile in parallel), no demo/MLP/graph
# examples, benchmarks gradkit vs torch CUDA only; step limits are given unscaled
short="${GRADKIT_GPU_SHORT:-0}"
budget="${GRADKIT_GPU_DEADLINE:-$([ "$short" = 1 ] && echo 190 || echo 450)}"
base=$([ "$short" = 1 ] && echo "$budget" || echo 450)
deadline=$((SECONDS + budget))
summary="$out/summary.txt"
: >"$summary"
failed=0
scratch="$(mktemp -d)"   # files no one needs back stay out of $OUT
trap 'rm -rf "$scratch"' EXIT

say() { echo "$*" | tee -a "$summary"; }

# run STEP_NAME MAX_SECONDS RESERVE_SECONDS LOGFILE CMD...: the step gets
# min(MAX, time left - RESERVE) seconds (RESERVE: kept for the steps after it)
run() {
  local name=$1 max=$(($2 * budget / base)) reserve=$(($3 * budget / base)) log=$4
  shift 4   # (the shares are set for 450 s and scale with the budget)
  local left=$((deadline - SECONDS - reserve))
  local lim=$((left < max ? left : max))
  if [ "$lim" -lt 1 ] || { [ "$lim" -lt 5 ] && [ "$lim" -lt "$max" ]; }; then
    say "SKIPPED  $name: the shared ${budget} s deadline is spent"
    failed=1
    return
  fi
  local t0=$SECONDS rc
  echo "== $name (limit ${lim} s)" | tee -a "$log"
  timeout --kill-after=5 "$lim" "$@" >>"$log" 2>&1
  rc=$?
  local status=ok
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && status="TIMED OUT"
  [ $rc -ne 0 ] && [ "$status" = ok ] && status="FAILED (rc $rc)"
  [ "$status" != ok ] && failed=1
  say "$(printf '%-9s %-46s %4d s' "$status" "$name" $((SECONDS - t0)))"
}

{
  echo "gradkit GPU check, $(date -u +%FT%TZ), budget ${budget} s, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true
  else
    echo "nvidia-smi: not found"
  fi
} | tee -a "$summary"

usable=$(timeout 30 "$py" -c "import gradkit as gk; print('yes' if gk.cuda.is_available() else 'no: ' + gk.cuda.why_unavailable())" 2>&1 | tail -1)
if [ "${usable%%:*}" != "yes" ]; then
  say "no usable GPU here ($usable)"
  say "skipped: kernel warm-up, CUDA tests, demo and examples on cuda, NCCL smoke, GPU benchmarks vs torch CUDA, fused-kernel bandwidth, CUDA-graph replay"
  exit 0
fi
timeout 20 "$py" -m gradkit info >>"$summary" 2>&1 || true

# 1. warm CuPy's kernel cache once (every kernel compiles on first use), before the
#    parallel tests compile them eight times over
if [ "$short" != 1 ]; then
  run "kernel warm-up (float16/32/64)" 60 360 "$out/warmup-and-examples.log" "$py" -m gradkit warmup
fi

# 2. the CUDA tests, in parallel; the ini's -q stays single so the summary line shows
xdist=(); "$py" -c "import xdist" 2>/dev/null && xdist=(-n $([ "$short" = 1 ] && echo 16 || echo 8))
ptimeout=(); "$py" -c "import pytest_timeout" 2>/dev/null && ptimeout=(--timeout=120)
# every test whose name or id says cuda (the device fixture's [cuda] cases included),
# plus the NVRTC leg against this machine's own CUDA toolkit and NVRTC
run "CUDA tests (pytest -k cuda/nvrtc ${xdist[*]})" 150 $([ "$short" = 1 ] && echo 95 || echo 230) \
  "$out/cuda-tests.log" \
  "$py" -m pytest -p no:cacheprovider -k "cuda or nvrtc or kernels_host" -rfEs \
  "${xdist[@]}" "${ptimeout[@]}" tests
[ -f "$out/cuda-tests.log" ] && grep -E "(passed|failed|error|skipped|deselected).* in [0-9.]+s" \
  "$out/cuda-tests.log" | tail -1 | sed 's/^/          pytest: /' | tee -a "$summary"

if [ "$short" = 1 ]; then   # most telling first; the benchmarks take what is left
  run "NCCL one-rank smoke (collectives, DDP step)" 20 75 "$out/warmup-and-examples.log" \
    "$py" scripts/nccl_smoke.py
  run "fused kernels vs d2d copy bandwidth" 20 60 "$out/benchmarks.log" \
    "$py" -m benchmarks.gpu_kernels --json "$out/gpu-kernels.json"
  run "CUDA-graph capture and replay" 20 50 "$out/benchmarks.log" \
    "$py" -m benchmarks.cuda_graph_check --json "$out/cuda-graph.json"
  run "examples/char_transformer.py --device cuda" 20 40 "$out/warmup-and-examples.log" \
    "$py" examples/char_transformer.py --device cuda --steps 100 --no-plot --out-dir "$scratch"
  run "examples/train_cnn.py --device cuda" 20 25 "$out/warmup-and-examples.log" \
    "$py" examples/train_cnn.py --device cuda --steps 150 --no-plot --out-dir "$scratch"
  run "W2 host path on cuda (host vs wall, hidden syncs)" 15 60 "$out/benchmarks.log" \
    "$py" -m benchmarks.gpu_host --device cuda --workload W2 --steps 20
  run "benchmarks --device cuda --quick W2,W4,W6,W7 (gradkit, torch)" 80 0 "$out/benchmarks.log" \
    "$py" -m benchmarks --device cuda --quick --only W2,W4,W6,W7 --impl gradkit,torch \
    --json "$out/gpu-bench.json" --timeout 40
  say "total $SECONDS s of the ${budget} s budget; files in \$OUT: $(find "$out" -type f | wc -l)"
  exit $failed
fi

# 3. the demo and the examples on cuda
run "demo --device cuda" 30 205 "$out/warmup-and-examples.log" "$py" -m gradkit demo --device cuda
run "examples/train_mlp.py --device cuda" 20 190 "$out/warmup-and-examples.log" \
  "$py" examples/train_mlp.py --device cuda --no-plot --out-dir "$scratch"
run "examples/char_transformer.py --device cuda" 25 175 "$out/warmup-and-examples.log" \
  "$py" examples/char_transformer.py --device cuda --steps 200 --no-plot --out-dir "$scratch"
run "examples/train_cnn.py --device cuda" 30 155 "$out/warmup-and-examples.log" \
  "$py" examples/train_cnn.py --device cuda --steps 300 --no-plot --out-dir "$scratch"
run "examples/computation_graph.py --device cuda" 10 150 "$out/warmup-and-examples.log" \
  "$py" examples/computation_graph.py --device cuda --graph "$scratch/graph.svg"

# NCCL with one rank: collectives on cuda, a DDP step, examples/train_ddp.py --device cuda
run "NCCL one-rank smoke (collectives, DDP step)" 40 130 "$out/warmup-and-examples.log" \
  "$py" scripts/nccl_smoke.py

# 4. GPU benchmarks, gradkit against hand-written CuPy and torch CUDA in the same run:
#    the training steps (W2 MLP, W4/W4-e transformer block, W6 conv net, W7 LSTM); the
#    per-op W1 is launch-bound on a GPU and the CPU suite covers it
run "benchmarks --device cuda --quick W2,W4,W6,W7" 150 55 "$out/benchmarks.log" \
  "$py" -m benchmarks --device cuda --quick --only W2,W4,W6,W7 --impl numpy,gradkit,torch \
  --json "$out/gpu-bench.json" --timeout 60

# where W2's host time goes on cuda (host vs wall per step, the first hidden sync, a
# profile): W2 was 2.46x torch CUDA in the second H200 run against 1.29x in the first
run "W2 host path on cuda (host vs wall, hidden syncs)" 20 40 "$out/benchmarks.log" \
  "$py" -m benchmarks.gpu_host --device cuda --workload W2 --steps 30

# 5. fused-kernel bandwidth against a device-to-device copy
run "fused kernels vs d2d copy bandwidth" 25 20 "$out/benchmarks.log" \
  "$py" -m benchmarks.gpu_kernels --json "$out/gpu-kernels.json"

# 6. a W2 step captured into a CUDA graph (no host sync), replayed against eager
run "CUDA-graph capture and replay" 25 0 "$out/benchmarks.log" \
  "$py" -m benchmarks.cuda_graph_check --json "$out/cuda-graph.json"

say "total $SECONDS s of the ${budget} s budget; files in \$OUT: $(find "$out" -type f | wc -l)"
exit $failed
