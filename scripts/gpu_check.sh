#!/usr/bin/env bash
# Everything a GPU session must verify, in one call, with no network:
#   the CUDA tests, the kernel warmup, the examples on cuda, and the GPU benchmarks.
# Results go to $OUT when it is set (the device tool brings that folder back).
# Usage (device tool): run(command="bash scripts/gpu_check.sh", timeout_s=480)
set -uo pipefail
out="${OUT:-/tmp/gradkit-gpu}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
status=0

python3 -m pip install -q --no-deps --no-build-isolation -e . >"$out/install.log" 2>&1 \
  || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import gradkit as gk; print('cuda usable:', gk.cuda.is_available(), gk.cuda.device_count(), gk.cuda.why_unavailable())"
  python3 -m gradkit info || true
} 2>&1 | tee "$out/device.txt"

echo "== CUDA tests"
timeout 240 python3 -m pytest -q -x -p no:cacheprovider tests -k "cuda" 2>&1 | tee "$out/cuda-tests.log" \
  || status=1

echo "== warmup + demo (what the Docker image runs)"
{ timeout 60 python3 -m gradkit warmup && timeout 90 python3 -m gradkit demo; } 2>&1 | tee "$out/docker-equivalent.log" \
  || status=1

echo "== GPU benchmarks (torch CUDA in the same run)"
if [ -d benchmarks ]; then
  timeout 200 python3 -m benchmarks --device cuda --quick --json "$out/gpu-bench.json" 2>&1 | tee "$out/gpu-bench.log" \
    || status=1
fi
echo "== fused kernels vs device-to-device copy bandwidth"
timeout 60 python3 -m benchmarks.gpu_kernels --json "$out/gpu-kernels.json" 2>&1 | tee "$out/gpu-kernels.log" \
  || status=1

echo "== W2 step captured into a CUDA graph (no host sync), replayed against eager"
timeout 60 python3 -m benchmarks.cuda_graph_check --json "$out/cuda-graph.json" 2>&1 | tee "$out/cuda-graph.log" \
  || status=1

echo "== NCCL with one rank: collectives on cuda, a DDP step, examples/train_ddp.py --device cuda"
# (appended to the CUDA tests' log: $OUT brings back only a few files)
timeout 90 python3 scripts/nccl_smoke.py 2>&1 | tee -a "$out/cuda-tests.log" || status=1
exit $status
