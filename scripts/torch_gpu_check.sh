#!/usr/bin/env bash
# The PyTorch operators (examples/torch) on the GPU machine: PyTorch with CUDA is installed there,
# none of our Debian packages and no network. Run `bash scripts/gpu_deps.sh` here first (Eigen and
# xsimd headers into .deps/), then on the GPU machine with .deps carried:
#   device tool: run(command="bash scripts/torch_gpu_check.sh", carry=[".deps"])
# Builds the extension with torch's own loader (CPU + CUDA sources, sm_90 unless
# TORCH_CUDA_ARCH_LIST says otherwise), runs tests/torch on CUDA tensors (with the CUDA-graph
# capture of padded slots) and on CPU tensors, and prints a short table; then the side-by-side
# timing of examples/torch/bench_ops.py (RODIMUS_TORCH_BENCH=0 skips it; about 30 s).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -d .deps/root/usr/include/xsimd ]; then
  echo "no .deps/root/usr/include/xsimd: run scripts/gpu_deps.sh here and carry .deps"
  exit 1
fi
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export RODIMUS_TORCH_BUILD=${RODIMUS_TORCH_BUILD:-$PWD/build/torch_ext_gpu}
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
export PYTHONPATH=$PWD/examples/torch${PYTHONPATH:+:$PYTHONPATH}
$PY -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, \
'device', torch.cuda.get_device_name() if torch.cuda.is_available() else None)"

mkdir -p build
t0=$(date +%s)
if ! RODIMUS_TORCH_VERBOSE=1 $PY -c "import rodimus_torch" > build/torch_ext_gpu_build.log 2>&1; then
  tail -60 build/torch_ext_gpu_build.log
  echo "extension build failed"
  exit 1
fi
build_s=$(($(date +%s) - t0))

declare -A result
failures=0
for dev in cuda cpu; do
  log=build/torch_ext_gpu_tests_$dev.log
  if RODIMUS_TORCH_DEVICE=$dev $PY -m unittest discover -s tests/torch -p 'test_*.py' -v \
       > "$log" 2>&1; then
    status=pass
  else
    status=FAIL
    failures=$((failures + 1))
    grep -B2 -A20 '^FAIL\|^ERROR' "$log" | head -80
  fi
  ran=$(grep -o '^Ran [0-9]* tests' "$log" | grep -o '[0-9]*' || echo 0)
  skipped=$(grep -o 'skipped=[0-9]*' "$log" | grep -o '[0-9]*' || echo 0)
  seed=$(grep -o 'RODIMUS_TEST_SEED=[0-9]*' "$log" | head -1)
  result[$dev]="| $dev | $status | $ran | $skipped | ${seed:-} |"
done

echo
echo "extension build (CPU + CUDA sources): ${build_s} s"
echo "| device | result | tests | skipped | seed on failure |"
echo "| --- | --- | --- | --- | --- |"
echo "${result[cuda]}"
echo "${result[cpu]}"
if [ "${RODIMUS_TORCH_BENCH:-1}" = 1 ]; then
  echo
  echo "operators eager, replayed from a CUDA graph, and in plain PyTorch (examples/torch/bench_ops.py):"
  $PY examples/torch/bench_ops.py || failures=$((failures + 1))
fi
exit $((failures > 0))
