#!/usr/bin/env bash
# The prefill round of the GPU machine (about 6 minutes on 16 cores): builds the GLA, SW-SKA,
# rmsnorm_linear / swiglu_linear and model CUDA tests and the two prefill benchmarks with the
# project's CMake (dependencies from .deps, configured as gpu_check.sh does, in the same build
# folder); runs the tests; memcheck on the GLA and SW-SKA tests' rounded (tensor-core) cases,
# racecheck on the same, memcheck on the whole rmsnorm_linear test; then
# bench_gla_prefill_cuda and bench_swska_cuda's prefill rows (JSON) and a table of both.
# Usage (device tool): run(command="bash scripts/gpu_prefill_round.sh", carry=[".deps"]).
# RODIMUS_PREFILL_SANITIZE=0 skips the sanitizers, RODIMUS_PREFILL_TESTS=0 the tests,
# RODIMUS_PREFILL_BENCH=0 the benchmarks (and the base's build);
# RODIMUS_PREFILL_TEST_LIST and RODIMUS_PREFILL_BENCH_LIST replace the lists of CUDA test and
# benchmark binaries (space-separated), RODIMUS_PREFILL_SAN_LIST the sanitized tests (gla, swska:
# memcheck and racecheck of the rounded cases; swska_decode: of the decode cases; others, e.g.
# rmsnorm_linear: memcheck of all); RODIMUS_PREFILL_SWSKA_FILTER: bench_swska_cuda's rows (default
# 'bm_copy|bm_gemm|bm_swska_prefill'), RODIMUS_PREFILL_LAUNCH_FILTER: bench_launch_cuda's rows
# (all; that benchmark runs only when RODIMUS_PREFILL_BENCH_LIST names it),
# RODIMUS_PREFILL_GLA_FILTER: bench_gla_prefill_cuda's (all);
# RODIMUS_PREFILL_NCU=1 adds Nsight Compute's speed-of-light, occupancy and warp-state sections of
# one launch of each tensor-core prefill kernel at B = 8, T = 2048, bf16 ($OUT/ncu_prefill.txt).
# With build/ab/base.tar carried (and RODIMUS_PREFILL_BASE not 0; made as
# scripts/gpu_ab_model.sh says) the base's two benchmarks are built beside and run first, in the
# same call, for before / after figures of one machine. Everything is appended to $OUT/prefill.log
# as it happens, so a call cut off at its limit still returns what ran.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
out=${OUT:-$root/build/gpu_check/out}
bld=$root/build/gpu_check
deps=$root/.deps
mkdir -p "$out" "$bld"
log=$out/prefill.log
say() { echo "$*" | tee -a "$log"; }
cuda_home=${CUDA_HOME:-/usr/local/cuda}
t0=$(date +%s)
say "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader 2>&1)"
read -r -a tests <<<"${RODIMUS_PREFILL_TEST_LIST:-cuda_test_gla cuda_test_swska cuda_test_rmsnorm_linear cuda_test_model}"
read -r -a benches <<<"${RODIMUS_PREFILL_BENCH_LIST:-bench_gla_prefill_cuda bench_swska_cuda}"
cmake -S "$root" -B "$bld" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$deps/root/usr" \
  -DCMAKE_CUDA_COMPILER="$cuda_home/bin/nvcc" -DRODIMUS_CUDA=ON -DRODIMUS_WERROR=ON \
  -DRODIMUS_BUILD_BENCH=ON -DRODIMUS_HEADER_CHECK=OFF >"$bld/build.log" 2>&1 &&
  cmake --build "$bld" -j "$(nproc)" --target "${tests[@]}" "${benches[@]}" >>"$bld/build.log" 2>&1 ||
  { grep -B2 -A12 -E "error" "$bld/build.log" | head -80 | tee -a "$log"; exit 1; }
base=/tmp/rodimus_prefill_base
if [ -f "$root/build/ab/base.tar" ] && [ "${RODIMUS_PREFILL_BENCH:-1}" != 0 ] &&
  [ "${RODIMUS_PREFILL_BASE:-1}" != 0 ]; then
  mkdir -p "$base/src" && tar -xf "$root/build/ab/base.tar" -C "$base/src"
  cmake -S "$base/src" -B "$base/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$deps/root/usr" -DCMAKE_CUDA_COMPILER="$cuda_home/bin/nvcc" \
    -DRODIMUS_CUDA=ON -DRODIMUS_BUILD_BENCH=ON -DRODIMUS_HEADER_CHECK=OFF >"$base/build.log" 2>&1 &&
    cmake --build "$base/build" -j "$(nproc)" --target "${benches[@]}" >>"$base/build.log" 2>&1 ||
    say "base build FAILED"
fi
say "build: $(( $(date +%s) - t0 )) s"
export LD_LIBRARY_PATH=$deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
find_bin() { find "$bld" -type f -name "$1" -perm -u+x | head -1; }
status=0
[ "${RODIMUS_PREFILL_TESTS:-1}" = 0 ] && tests=()
for name in "${tests[@]}"; do
  if timeout "${RODIMUS_TEST_TIMEOUT:-300}" "$(find_bin "$name")" >"$out/$name.log" 2>&1; then
    say "$name: passed ($(grep -m1 -oE 'assertions: *[0-9]+ *\| *[0-9]+ passed' "$out/$name.log"))"
  else say "$name: FAILED"; grep -B4 -A16 -E "ERROR|error" "$out/$name.log" | head -60 | tee -a "$log"; status=1; fi
done
say "tests: $(( $(date +%s) - t0 )) s"
[ "${RODIMUS_PREFILL_BENCH:-1}" = 0 ] && run_benches=() || run_benches=("${benches[@]}")
for b in "${run_benches[@]}"; do
  filter=.; [ "$b" = bench_swska_cuda ] && filter=${RODIMUS_PREFILL_SWSKA_FILTER:-'bm_copy|bm_gemm|bm_swska_prefill'}
  [ "$b" = bench_launch_cuda ] && filter=${RODIMUS_PREFILL_LAUNCH_FILTER:-.}
  [ "$b" = bench_gla_prefill_cuda ] && filter=${RODIMUS_PREFILL_GLA_FILTER:-.}
  bb=$(find "$base/build" -type f -name "$b" -perm -u+x 2>/dev/null | head -1)
  if [ -n "$bb" ]; then
    "$bb" --benchmark_filter="$filter" --benchmark_out="$out/base_$b.json" --benchmark_out_format=json \
      >"$out/base_$b.txt" 2>&1 || say "base $b: FAILED"
    say "base:"; python3 scripts/bench_table.py "$out/base_$b.json" 2>&1 | tee -a "$log"
  fi
  "$(find_bin "$b")" --benchmark_filter="$filter" --benchmark_out="$out/$b.json" \
    --benchmark_out_format=json >"$out/$b.txt" 2>&1 || { say "$b: FAILED"; tail -5 "$out/$b.txt" | tee -a "$log"; }
  python3 scripts/bench_table.py "$out/$b.json" 2>&1 | tee -a "$log"
done
say "benchmarks: $(( $(date +%s) - t0 )) s"
if [ "${RODIMUS_PREFILL_SANITIZE:-1}" != 0 ]; then
  san() { # tool, binary, doctest filter
    if timeout "${RODIMUS_TEST_TIMEOUT:-300}" "$cuda_home/bin/compute-sanitizer" --tool "$1" --error-exitcode 99 "$(find_bin "$2")" \
      --test-case="$3" >"$out/san_$1_$2.log" 2>&1
    then say "$2 $1 ($3): $(grep -m1 -oE '(ERROR|RACECHECK) SUMMARY: .*' "$out/san_$1_$2.log")"
    else say "$2 $1 ($3): FAILED"; grep -m3 -A12 "=========" "$out/san_$1_$2.log" | head -40 | tee -a "$log"; status=1; fi
  }
  for s in ${RODIMUS_PREFILL_SAN_LIST:-gla swska rmsnorm_linear}; do
    case $s in
    gla | swska)
      san memcheck "cuda_test_$s" '*rounded*'
      san racecheck "cuda_test_$s" '*rounded*' ;;
    swska_decode) san memcheck cuda_test_swska '*swska_decode*' ;; # bad slots, positions too
    linear_stream) # the streamed GEMV's bulk copies and barriers (linear_stream.cuh)
      san memcheck cuda_test_linear '*streamed*'
      san racecheck cuda_test_linear '*streamed*'
      san synccheck cuda_test_linear '*streamed*' ;;
    *) san memcheck "cuda_test_$s" '*' ;;
    esac
  done
  say "sanitizers: $(( $(date +%s) - t0 )) s"
fi
if [ "${RODIMUS_PREFILL_NCU:-0}" = 1 ]; then
  ncu_sec() { # kernel regex, binary, benchmark filter
    timeout 200 ncu --clock-control none -k "regex:$1" --launch-count 1 --section SpeedOfLight \
      --section Occupancy --section LaunchStats --section WarpStateStats \
      --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
      "$(find_bin "$2")" --benchmark_filter="$3" >>"$out/ncu_prefill.txt" 2>&1 || say "ncu $1: failed"
  }
  ncu_sec gla_mma_prepare bench_gla_prefill_cuda 'bm_gla_prefill<bf16>/8/2048/1'
  ncu_sec gla_mma_chunked bench_gla_prefill_cuda 'bm_gla_prefill<bf16>/8/2048/1'
  ncu_sec swska_mma_prefill bench_swska_cuda 'bm_swska_prefill/8/2048/1/2048'
  grep -E "^  [a-z_]+.*\(|Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Compute \(SM\) Throughput|Memory Throughput|DRAM Throughput|Issue Slots Busy|Warp Cycles Per Issued|Block Limit|Stall|L1/TEX Hit|L2 Hit" \
    "$out/ncu_prefill.txt" | head -80 | tee -a "$log"
  say "ncu: $(( $(date +%s) - t0 )) s"
fi
exit $status
