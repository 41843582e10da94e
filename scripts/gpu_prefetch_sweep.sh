#!/usr/bin/env bash
# The decode step's L2 prefetch (backend/cuda/l2_prefetch.cuh) timed in one device call: the
# kernel-level rows (bench_launch_cuda's bm_prefetch_window: a GEMV after an idle stretch, with and
# without the prefetch) and the whole rodimus-plus-1.6b decode at several --prefetch budgets,
# interleaved (0 first and again later, so a drift of the card shows). Builds the tool and the
# benchmark with scripts/gpu_profile.sh (carry .deps).
# Usage (device tool): run(command="bash scripts/gpu_prefetch_sweep.sh", carry=[".deps"]).
# RODIMUS_PREFETCH_RUNS: ';'-separated `rodimus bench` flag sets (default below).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${OUT:-$root/build/gpu_prefetch/out}
bld=$root/build/gpu_check
mkdir -p "$out" "$bld"
# The build of scripts/gpu_profile.sh (the tool, plus this benchmark), nothing of its runs.
OUT=$out RODIMUS_PROFILE_BENCH=0 RODIMUS_PROFILE_NCU=0 RODIMUS_PROFILE_EXTRA_TARGETS=bench_launch_cuda \
  bash scripts/gpu_profile.sh >/dev/null || { tail -40 "$out/build.log"; exit 1; }
export LD_LIBRARY_PATH=$root/.deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
tool=$(find "$bld" -type f -name rodimus -perm -u+x | head -1)
"$(find "$bld" -type f -name bench_launch_cuda -perm -u+x | head -1)" \
  --benchmark_filter='bm_copy|bm_prefetch_window' --benchmark_out="$out/bench_prefetch_window.json" \
  --benchmark_out_format=json >/dev/null 2>&1
python3 scripts/bench_table.py "$out/bench_prefetch_window.json" | sed 's/bm_prefetch_window/pw/' | cut -c1-70
p="--batch 1 --prompt 128 --gen 64"
IFS=';' read -r -a runs <<<"${RODIMUS_PREFETCH_RUNS:-$p --prefetch 0;$p --prefetch 16;$p --prefetch 32;$p --prefetch 48;$p --prefetch 0;$p --prefetch 32;--batch 1 --prompt 2048 --gen 64 --prefetch 0;--batch 1 --prompt 2048 --gen 64 --prefetch 32;--batch 64 --prompt 128 --gen 32 --prefetch 0;--batch 64 --prompt 128 --gen 32 --prefetch 32}"
i=0
for r in "${runs[@]}"; do
  i=$((i + 1))
  # shellcheck disable=SC2086
  "$tool" bench --backend cuda --geometry rodimus-plus-1.6b --dtype bf16 --dir "$bld/model-1.6b" --json $r \
    >"$out/run$i.json" 2>"$out/run$i.err" || { echo "FAILED: $r"; tail -3 "$out/run$i.err"; continue; }
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(f\"{sys.argv[2]:55} decode {d['decode_tokens_per_s']:9.1f} tok/s ({d['decode_limit_ratio']:.3f} of copy)\")" "$out/run$i.json" "$r"
done
