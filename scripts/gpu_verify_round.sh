#!/usr/bin/env bash
# One or more device calls that check a tree on the GPU and time it against a base, in phases
# (RODIMUS_VERIFY_PHASES, run in this order; default "tests kernels model sanitize decode"):
#   tests     the A / B builds of scripts/gpu_ab_model.sh start in the background (niced) while
#             scripts/gpu_prefill_round.sh builds and runs the CUDA tests (RODIMUS_PREFILL_TEST_LIST);
#   kernels   gpu_prefill_round.sh's kernel benchmarks (RODIMUS_PREFILL_BENCH_LIST; the base's too,
#             from build/ab/base.tar);
#   model     the whole-model A / B (RODIMUS_AB_RUNS, RODIMUS_AB_REPEAT; only with build/ab/base.tar),
#             then the working tree's tool alone on RODIMUS_VERIFY_TOOL_RUNS (';'-separated
#             `rodimus bench --backend cuda --geometry rodimus-plus-1.6b --dtype bf16` flag sets:
#             flags the base lacks, e.g. --tuning choices compared in one binary; without the A / B
#             build the tool is built in build/gpu_check, the tests' folder);
#   sanitize  gpu_prefill_round.sh's compute-sanitizer runs;
#   decode    the decode benchmarks of the SW-SKA and the mixer (bench_swska_cuda's decode rows,
#             bench_mixer_decode_cuda).
# Calls in a row find the machine warm and the builds done (device README: ignored build outputs
# stay between calls), so the phases can be split over calls to stay inside a call's limit:
#   run(command="RODIMUS_VERIFY_PHASES='tests kernels' bash scripts/gpu_verify_round.sh",
#       carry=[".deps", "build/ab"])
# (base tarball made as gpu_ab_model.sh says). Logs in $OUT.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
out=${OUT:-$root/build/gpu_check/out}
mkdir -p "$out"
t0=$(date +%s)
phases=" ${RODIMUS_VERIFY_PHASES:-tests kernels model sanitize decode} "
export RODIMUS_PREFILL_TEST_LIST=${RODIMUS_PREFILL_TEST_LIST:-cuda_test_gla cuda_test_swska cuda_test_rmsnorm_linear cuda_test_linear cuda_test_model}
export RODIMUS_AB_RUNS=${RODIMUS_AB_RUNS:-"--batch 8 --prompt 128 --gen 32;--batch 4 --prompt 128 --gen 32;--batch 1 --prompt 128 --gen 64"}
export RODIMUS_AB_REPEAT=${RODIMUS_AB_REPEAT:-2}
status=0
ab=0
if [[ $phases == *" tests "* ]]; then
  if [ -f build/ab/base.tar ] && [[ $phases == *" model "* ]]; then
    RODIMUS_AB_BUILD_ONLY=1 nice -n 5 bash scripts/gpu_ab_model.sh >"$out/ab_build.log" 2>&1 &
    ab=$!
  fi
  RODIMUS_PREFILL_BENCH=0 RODIMUS_PREFILL_SANITIZE=0 bash scripts/gpu_prefill_round.sh || status=1
  echo "== tests: rc $status, $(( $(date +%s) - t0 )) s"
fi
if [[ $phases == *" kernels "* ]]; then
  RODIMUS_PREFILL_TESTS=0 RODIMUS_PREFILL_SANITIZE=0 bash scripts/gpu_prefill_round.sh
  echo "== kernel benchmarks: $(( $(date +%s) - t0 )) s"
fi
export LD_LIBRARY_PATH=$root/.deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if [[ $phases == *" model "* ]]; then
  [ "$ab" != 0 ] && { wait "$ab"; tail -1 "$out/ab_build.log"; }
  if [ -f build/ab/base.tar ]; then
    bash scripts/gpu_ab_model.sh >"$out/ab.txt" 2>&1; tail -12 "$out/ab.txt"
    echo "== A / B: $(( $(date +%s) - t0 )) s"
  fi
  if [ -n "${RODIMUS_VERIFY_TOOL_RUNS:-}" ]; then
    tool=$(find /tmp/rodimus_ab/new/build -type f -name rodimus -perm -u+x 2>/dev/null | head -1)
    if [ -z "$tool" ]; then # no A / B build: the working tree's tool in the tests' build folder
      cmake --build "$root/build/gpu_check" -j "$(nproc)" --target rodimus_tool >"$out/tool_build.log" 2>&1 ||
        { echo "tool build FAILED"; tail -20 "$out/tool_build.log"; }
      tool=$(find "$root/build/gpu_check" -type f -name rodimus -perm -u+x | head -1)
    fi
    mkdir -p /tmp/rodimus_ab
    IFS=';' read -r -a runs <<<"$RODIMUS_VERIFY_TOOL_RUNS"
    for r in "${runs[@]}"; do
      # shellcheck disable=SC2086
      "$tool" bench --backend cuda --geometry rodimus-plus-1.6b --dtype bf16 --dir /tmp/rodimus_ab/model-b \
        --json $r >"$out/tool.json" 2>"$out/tool.err" || { echo "FAILED: $r"; tail -3 "$out/tool.err"; continue; }
      python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(f\"{sys.argv[2]:60} prefill {d['prefill_tokens_per_s']:10.1f} tok/s ({d['prefill_matmul_ratio']:.3f} of GEMM)  decode {d['decode_tokens_per_s']:9.1f} tok/s\")" "$out/tool.json" "$r"
    done
    echo "== tool runs: $(( $(date +%s) - t0 )) s"
  fi
fi
if [[ $phases == *" sanitize "* ]]; then
  RODIMUS_PREFILL_BENCH=0 RODIMUS_PREFILL_TESTS=0 bash scripts/gpu_prefill_round.sh || status=1
  echo "== sanitizers: rc $status, $(( $(date +%s) - t0 )) s"
fi
if [[ $phases == *" decode "* ]]; then
  bld=$root/build/gpu_check
  if cmake --build "$bld" -j "$(nproc)" --target bench_swska_cuda bench_mixer_decode_cuda >"$out/decode_bench_build.log" 2>&1; then
    "$(find "$bld" -type f -name bench_swska_cuda -perm -u+x | head -1)" --benchmark_filter='bm_copy|bm_swska_decode' \
      --benchmark_out="$out/bench_swska_decode.json" --benchmark_out_format=json >/dev/null 2>&1
    python3 scripts/bench_table.py "$out/bench_swska_decode.json" 2>&1 | tail -45
    "$(find "$bld" -type f -name bench_mixer_decode_cuda -perm -u+x | head -1)" \
      --benchmark_out="$out/bench_mixer_decode_cuda.json" --benchmark_out_format=json >/dev/null 2>&1
    python3 scripts/bench_table.py "$out/bench_mixer_decode_cuda.json" 2>&1 | tail -12
  else echo "decode benchmarks: build failed"; tail -20 "$out/decode_bench_build.log"; fi
  echo "== decode benchmarks: $(( $(date +%s) - t0 )) s"
fi
echo "== summary"; grep -E "passed|FAILED|SUMMARY" "$out/prefill.log"
exit $status
