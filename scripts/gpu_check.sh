#!/usr/bin/env bash
# The CUDA check of the GPU machine, in one command (CI has no GPU; it only compiles the .cu files):
#   1. build the CUDA tests and benchmarks with the project's own CMake (the targets CI compiles);
#      the machine has none of our Debian packages: scripts/gpu_deps.sh unpacks them into .deps/
#      on the build machine and the device call carries that folder
#   2. run the CUDA tests
#   3. the Google Benchmark suite, JSON output
#   4. compute-sanitizer memcheck, racecheck, initcheck and synccheck on the test binary
#   5. optionally (RODIMUS_NCU=1) one Nsight Compute profile of the decode kernel at B = 64
#   6. a short table last
# Usage (device tool): run(command="bash scripts/gpu_check.sh", carry=[".deps"]).
# Logs go to $OUT (the device tool's result folder) or build/gpu_check/out when OUT is unset.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${OUT:-$root/build/gpu_check/out}
bld=$root/build/gpu_check
mkdir -p "$out" "$bld"
cuda_home=${CUDA_HOME:-/usr/local/cuda}
nvcc=$cuda_home/bin/nvcc
[ -x "$nvcc" ] || nvcc=$(command -v nvcc)
sanitizer=$cuda_home/bin/compute-sanitizer
[ -x "$sanitizer" ] || sanitizer=$(command -v compute-sanitizer || true)
deps=$root/.deps
status=0
fail() { echo "FAILED: $*"; status=1; }

echo "== machine"
date -u +%Y-%m-%dT%H:%M:%SZ
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem,clocks.max.sm,temperature.gpu,power.draw \
  --format=csv 2>&1 || echo "(nvidia-smi not available)"
"$nvcc" --version | tail -2
g++ --version | head -1

echo "== build (the project's CMake, dependencies from .deps)"
[ -d "$deps/root/usr" ] || { echo "no .deps/root: run scripts/gpu_deps.sh here and carry .deps"; exit 1; }
t0=$(date +%s)
tests=(); for src in tests/cuda/test_*.cu; do tests+=("cuda_$(basename "$src" .cu)"); done
# RODIMUS_GPU_TESTS="cuda_test_a cuda_test_b": only these; RODIMUS_GPU_BENCH=0: no benchmarks;
# RODIMUS_GPU_SANITIZE=0: no compute-sanitizer.
[ -n "${RODIMUS_GPU_TESTS:-}" ] && read -r -a tests <<<"$RODIMUS_GPU_TESTS"
benches=(); for src in bench/cuda/bench_*.cu; do benches+=("$(basename "$src" .cu)"); done
[ "${RODIMUS_GPU_BENCH:-1}" = 0 ] && benches=()
extra_targets=(${RODIMUS_GPU_EXTRA_TARGETS:-})
[ "${RODIMUS_GPU_TOOL:-1}" = 1 ] && extra_targets+=(rodimus_tool)
cmake -S "$root" -B "$bld" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$deps/root/usr" \
  -DCMAKE_CUDA_COMPILER="$nvcc" -DRODIMUS_CUDA=ON -DRODIMUS_WERROR=ON -DRODIMUS_BUILD_BENCH=ON \
  -DRODIMUS_HEADER_CHECK=OFF >"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
cmake --build "$bld" -j "$(nproc)" --target "${tests[@]}" "${benches[@]}" "${extra_targets[@]}" \
  >>"$out/build.log" 2>&1 || status=1
echo "build: $(( $(date +%s) - t0 )) s, status $status"
[ $status -eq 0 ] || { grep -B2 -A12 -E "error|Error" "$out/build.log" | head -150; exit 1; }
export LD_LIBRARY_PATH=$deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
find_bin() { find "$bld" -type f -name "$1" -perm -u+x | head -1; }

echo "== tests"
test_summary=()
for name in "${tests[@]}"; do
  if "$(find_bin "$name")" 2>&1 | tee -a "$out/test.log"; then test_summary+=("$name: passed")
  else test_summary+=("$name: FAILED"); fail "$name"; fi
done

echo "== benchmarks"
bench_json=()
for name in "${benches[@]}"; do
  "$(find_bin "$name")" --benchmark_out="$out/$name.json" --benchmark_out_format=json \
    --benchmark_counters_tabular=true 2>&1 | tee -a "$out/bench.log" || fail "$name"
  bench_json+=("$out/$name.json")
done

if [ "${RODIMUS_GPU_TOOL:-1}" = 1 ]; then
  echo "== the rodimus tool on the GPU"
  tool=$(find_bin rodimus)
  if [ -z "$tool" ]; then fail "rodimus tool not built"; else
    "$tool" generate --backend cuda 2>&1 | tee "$out/generate_cuda.log" | tail -7 || fail "generate --backend cuda"
    g=$root/tests/data/golden
    for m in rodimus_plus_tiny:rodimus_plus_tiny:logits rodimus_plus_tiny_bf16:rodimus_plus_tiny:logits_bf16_weights; do
      IFS=: read -r model exp tensor <<<"$m"
      for mode in forward decode split:20; do
        "$tool" logits --backend cuda --model "$g/$model" --input "$g/$exp/expected.safetensors" \
          --output "$bld/logits_$model.safetensors" --mode "$mode" >/dev/null 2>"$bld/logits.err" ||
          { cat "$bld/logits.err"; fail "logits --backend cuda $model $mode"; continue; }
        python3 - "$bld/logits_$model.safetensors" "$g/$exp/expected.safetensors" "$tensor" "$model $mode" <<'PY' || fail "logits $model $mode"
import json, struct, sys
import numpy as np
def read(path, name):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]; h = json.loads(f.read(n)); base = 8 + n
        t = h[name]; a, b = t['data_offsets']; f.seek(base + a)
        return np.frombuffer(f.read(b - a), dtype={'F32': np.float32}[t['dtype']]).reshape(t['shape'])
got, want = read(sys.argv[1], 'logits'), read(sys.argv[2], sys.argv[3])
d = float(np.abs(got.astype(np.float64) - want).max()); bound = 1e-3 * max(1.0, float(np.abs(want).max()))
print(f"logits --backend cuda {sys.argv[4]}: max|got - want| = {d:.3g} (bound {bound:.3g})")
sys.exit(0 if d <= bound else 1)
PY
      done
    done
    if [ "${RODIMUS_GPU_BENCH:-1}" != 0 ]; then
      for b in 1 16 64; do
        "$tool" bench --backend cuda --geometry rodimus-plus-1.6b --batch $b --prompt 128 --gen 32 \
          --dir "$bld/model-1.6b" --json >"$out/bench_model_b$b.json" 2>"$bld/bench.err" ||
          { cat "$bld/bench.err"; fail "bench --backend cuda --batch $b"; }
        cat "$out/bench_model_b$b.json"
      done
    fi
  fi
fi

echo "== compute-sanitizer"
san_summary=()
[ "${RODIMUS_GPU_SANITIZE:-1}" = 0 ] && sanitizer=""
if [ -n "$sanitizer" ]; then
  # The four tools on every test, at most RODIMUS_SAN_JOBS (12) at a time: they only slow the
  # kernels down (the GPU is not timed here). Each job leaves its exit status in a file.
  san_jobs=${RODIMUS_SAN_JOBS:-12}
  san_timeout=${RODIMUS_SAN_TIMEOUT:-300}
  pairs=()
  for name in "${tests[@]}"; do
    for tool in memcheck racecheck initcheck synccheck; do
      pairs+=("$name:$tool")
      extra=()
      [ "$tool" = memcheck ] && extra=(--leak-check full)
      while [ "$(jobs -rp | wc -l)" -ge "$san_jobs" ]; do wait -n || true; done
      # racecheck runs kernels ~100x slower: for the two longest binaries it takes the test
      # cases that run every kernel of them on small shapes (the full cases time out).
      filter=()
      case "$tool:$name" in
        racecheck:cuda_test_model) filter=(-tc='*batch invariance*,*decode_async*') ;;
        racecheck:cuda_test_gla) filter=(-tc='*slot pools*,*bad arguments*,*skipped*') ;;
      esac
      ( timeout "$san_timeout" "$sanitizer" --tool "$tool" "${extra[@]}" --error-exitcode 99 \
          "$(find_bin "$name")" "${filter[@]}" >"$bld/san_${name}_$tool.log" 2>&1
        echo $? >"$bld/san_${name}_$tool.rc" ) &
    done
  done
  wait
  for j in "${pairs[@]}"; do
    IFS=: read -r name tool <<<"$j"
    log=$bld/san_${name}_$tool.log
    rc=$(cat "$bld/san_${name}_$tool.rc" 2>/dev/null || echo missing)
    if [ "$rc" = 0 ]; then
      san_summary+=("$name $tool: clean ($(grep -m1 -oE '(ERROR|RACECHECK) SUMMARY: [0-9]* (errors|hazards displayed)' "$log" || echo 'no summary'))")
    else
      san_summary+=("$name $tool: FAILED, exit $rc (see sanitize.log)"); fail "$name $tool"
    fi
    { echo "---- $name $tool (exit $rc)"; tail -40 "$log"; } >>"$out/sanitize.log"
  done
else
  san_summary+=("compute-sanitizer not found")
fi

if [ "${RODIMUS_NCU:-0}" = 1 ] && command -v ncu >/dev/null; then
  echo "== ncu (one decode kernel, bf16, B = 64)"
  timeout 180 ncu --clock-control none -k regex:gla_decode_kernel \
    --launch-skip 10 --launch-count 1 --section SpeedOfLight --section MemoryWorkloadAnalysis \
    --section Occupancy --section LaunchStats \
    "$(find_bin bench_gla_decode)" --benchmark_filter='bm_gla_decode<bf16>/64/' >"$out/ncu.log" 2>&1 ||
    echo "ncu failed (see ncu.log)"
  grep -E 'DRAM Throughput|Memory Throughput|Duration|Achieved Occupancy|Registers Per|Theoretical Occ' \
    "$out/ncu.log" | head -20
fi

echo
echo "== summary"
printf '%s\n' "${test_summary[@]}" "${san_summary[@]}"
python3 - "${bench_json[@]}" <<'PY'
import json, sys
for path in sys.argv[1:]:
    try:
        d = json.load(open(path))
    except Exception as e:
        print(f"{path}: unreadable ({e})"); continue
    ctx = d.get("context", {})
    print(f"{ctx.get('device', '?')}, {ctx.get('sm_count', '?')} SMs; library build: {ctx.get('library_build_type', '?')}")
    print(f"{'benchmark':44} {'median us':>10} {'state GB/s':>11} {'copy GB/s':>10} {'ratio':>6}")
    for b in d.get("benchmarks", []):
        name = b["name"].replace("/iterations:50", "").replace("/manual_time", "")
        if "error_occurred" in b:
            print(f"{name:44} ERROR {b.get('error_message', '')}"); continue
        if "median_us" in b:
            print(f"{name:44} {b['median_us']:10.2f} {b['state_GBps']:11.0f} {b['copy_GBps']:10.0f} {b['ratio']:6.1%}")
        elif "copy_GBps" in b:
            print(f"{name:44} {'':10} {'':11} {b['copy_GBps']:10.0f}")
PY
echo "overall: $([ $status -eq 0 ] && echo OK || echo FAILED)"
exit $status
