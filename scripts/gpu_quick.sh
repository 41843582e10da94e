#!/usr/bin/env bash
# The short device call, for a session with little device time left (about 4 minutes on 16
# cores): build every CUDA test, bench_launch_cuda and the tool; the GEMV benchmarks (the kernel
# A / B that bench_launch_cuda holds in one binary); every CUDA test; a batch-1 and a batch-16
# decode of rodimus-plus-1.6b; memcheck on the linear tests. Everything is appended to
# $OUT/quick.log as it happens, so a call cut off at its limit still returns what ran.
# Usage (device tool): run(command="bash scripts/gpu_quick.sh", carry=[".deps"], timeout_s=300).
# scripts/gpu_check.sh is the full check (all four sanitizers on every test).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${OUT:-$root/build/gpu_check/out}
bld=$root/build/gpu_check
deps=$root/.deps
mkdir -p "$out" "$bld"
log=$out/quick.log
say() { echo "$*" | tee -a "$log"; }
t0=$(date +%s)
say "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,clocks.sm --format=csv,noheader 2>&1)"
tests=(); for src in tests/cuda/test_*.cu; do tests+=("cuda_$(basename "$src" .cu)"); done
cmake -S "$root" -B "$bld" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$deps/root/usr" \
  -DCMAKE_CUDA_COMPILER="${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" -DRODIMUS_CUDA=ON -DRODIMUS_WERROR=ON \
  -DRODIMUS_BUILD_BENCH=ON -DRODIMUS_HEADER_CHECK=OFF >"$bld/build.log" 2>&1 &&
  cmake --build "$bld" -j "$(nproc)" --target "${tests[@]}" bench_launch_cuda rodimus_tool \
    >>"$bld/build.log" 2>&1 || { grep -B2 -A12 -E "error" "$bld/build.log" | head -80 | tee -a "$log"; exit 1; }
say "build: $(( $(date +%s) - t0 )) s"
export LD_LIBRARY_PATH=$deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
find_bin() { find "$bld" -type f -name "$1" -perm -u+x | head -1; }

"$(find_bin bench_launch_cuda)" --benchmark_filter="${RODIMUS_QUICK_BENCH:-bm_copy|bm_gemv_config|bm_launch_chain}" \
  --benchmark_out="$out/bench_launch_cuda.json" --benchmark_out_format=json >/dev/null 2>>"$log"
python3 scripts/bench_table.py "$out/bench_launch_cuda.json" 2>&1 | tee -a "$log"
say "benchmarks: $(( $(date +%s) - t0 )) s"

status=0
for name in "${tests[@]}"; do
  if "$(find_bin "$name")" >"$bld/$name.log" 2>&1; then say "$name: passed ($(grep -m1 -oE 'assertions: *[0-9]+' "$bld/$name.log"))"
  else say "$name: FAILED"; tail -30 "$bld/$name.log" | tee -a "$log"; status=1; fi
done
say "tests: $(( $(date +%s) - t0 )) s"

tool=$(find_bin rodimus)
for b in 1 16; do
  "$tool" bench --backend cuda --geometry rodimus-plus-1.6b --dtype bf16 --dir "$bld/model-1.6b" \
    --batch $b --prompt 128 --gen 32 --json >"$out/bench_model_b$b.json" 2>"$bld/bench.err" ||
    { tail -3 "$bld/bench.err" | tee -a "$log"; status=1; }
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(f\"decode B={d['batch']}: {d['decode_tokens_per_s']:.1f} tokens/s, {d['decode_limit_ratio']:.3f} of copy bw\")" \
    "$out/bench_model_b$b.json" 2>&1 | tee -a "$log"
done
say "model: $(( $(date +%s) - t0 )) s"

# RODIMUS_QUICK_MEMCHECK / RODIMUS_QUICK_RACECHECK: the test binaries each tool runs on.
sanitize() { # tool, binaries...
  local tool=$1; shift
  for name in "$@"; do
    if compute-sanitizer --tool "$tool" --error-exitcode 99 "$(find_bin "$name")" >"$bld/san_${tool}_$name.log" 2>&1
    then say "$name $tool: $(grep -m1 -oE 'ERROR SUMMARY: [0-9]+ errors' "$bld/san_${tool}_$name.log")"
    else say "$name $tool: FAILED"; tail -20 "$bld/san_${tool}_$name.log" | tee -a "$log"; status=1; fi
  done
}
# shellcheck disable=SC2086
sanitize memcheck ${RODIMUS_QUICK_MEMCHECK:-cuda_test_linear cuda_test_rmsnorm_linear}
# shellcheck disable=SC2086
sanitize racecheck ${RODIMUS_QUICK_RACECHECK:-}
say "overall: $([ $status -eq 0 ] && echo OK || echo FAILED) after $(( $(date +%s) - t0 )) s"
exit $status
