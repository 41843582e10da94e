#!/usr/bin/env bash
# One device call that checks a tree on the GPU and times it against a base: the A / B builds of
# scripts/gpu_ab_model.sh start in the background (half the cores) while
# scripts/gpu_prefill_round.sh builds and runs the CUDA tests and their sanitizers (no
# benchmarks); then the whole-model A / B runs alone on the machine; then the decode benchmarks
# of the SW-SKA and the mixer (bench_swska_cuda's decode rows, bench_mixer_decode_cuda), if time
# is left. Usage (device tool), base tarball made as gpu_ab_model.sh says:
#   run(command="bash scripts/gpu_verify_round.sh", carry=[".deps", "build/ab"])
# RODIMUS_PREFILL_TEST_LIST and RODIMUS_AB_RUNS / RODIMUS_AB_REPEAT pass through (defaults below);
# RODIMUS_VERIFY_DECODE_BENCH=0 skips the decode benchmarks. Logs in $OUT.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
out=${OUT:-$root/build/gpu_check/out}
mkdir -p "$out"
t0=$(date +%s)
export RODIMUS_PREFILL_TEST_LIST=${RODIMUS_PREFILL_TEST_LIST:-cuda_test_gla cuda_test_swska cuda_test_rmsnorm_linear cuda_test_linear cuda_test_model}
export RODIMUS_AB_RUNS=${RODIMUS_AB_RUNS:-"--batch 8 --prompt 128 --gen 32;--batch 4 --prompt 128 --gen 32;--batch 1 --prompt 128 --gen 64"}
export RODIMUS_AB_REPEAT=${RODIMUS_AB_REPEAT:-2}
ab=0
if [ -f build/ab/base.tar ]; then
  RODIMUS_AB_BUILD_ONLY=1 nice -n 5 bash scripts/gpu_ab_model.sh >"$out/ab_build.log" 2>&1 &
  ab=$!
fi
RODIMUS_PREFILL_BENCH=0 bash scripts/gpu_prefill_round.sh
status=$?
echo "== tests and sanitizers: rc $status, $(( $(date +%s) - t0 )) s"
if [ "$ab" != 0 ]; then
  wait "$ab"; tail -2 "$out/ab_build.log"
  bash scripts/gpu_ab_model.sh 2>&1 | tee "$out/ab.txt" | tail -12
  echo "== A / B: $(( $(date +%s) - t0 )) s"
fi
if [ "${RODIMUS_VERIFY_DECODE_BENCH:-1}" != 0 ]; then
  bld=$root/build/gpu_check
  export LD_LIBRARY_PATH=$root/.deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  if cmake --build "$bld" -j "$(nproc)" --target bench_swska_cuda bench_mixer_decode_cuda >"$out/decode_bench_build.log" 2>&1; then
    "$(find "$bld" -type f -name bench_swska_cuda -perm -u+x | head -1)" --benchmark_filter='bm_copy|bm_swska_decode' \
      --benchmark_out="$out/bench_swska_decode.json" --benchmark_out_format=json >/dev/null 2>&1
    python3 scripts/bench_table.py "$out/bench_swska_decode.json" 2>&1 | tail -20
    "$(find "$bld" -type f -name bench_mixer_decode_cuda -perm -u+x | head -1)" \
      --benchmark_out="$out/bench_mixer_decode_cuda.json" --benchmark_out_format=json >/dev/null 2>&1
    python3 scripts/bench_table.py "$out/bench_mixer_decode_cuda.json" 2>&1 | tail -12
  else echo "decode benchmarks: build failed"; tail -20 "$out/decode_bench_build.log"; fi
  echo "== decode benchmarks: $(( $(date +%s) - t0 )) s"
fi
echo "== summary"; grep -E "passed|FAILED|SUMMARY" "$out/prefill.log"
exit $status
