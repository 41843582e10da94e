#!/usr/bin/env bash
# The decode-speed round of issue 10 in one device call, after scripts/gpu_check.sh has built the
# tool in build/gpu_check (same machine, still warm) or building it here:
#   1. rodimus bench on the rodimus-plus-1.6b geometry (bf16): decode B = 1, 16, 64 and prefill
#      8 x 2048 with --launch overlapped and serial (--matmul exact), then --matmul rounded
#      (overlapped) B = 1, 64 and 8 x 2048: JSON to $OUT/model/, one table (scripts/gpu_bench_model.sh)
#   2. Nsight Compute on a 2-layer batch-1 decode: every kernel's duration (caches and clocks left
#      alone, so small kernels are not charged a cold L2), a CSV to $OUT
# Usage (device tool): run(command="bash scripts/gpu_decode_round.sh", carry=[".deps"]).
# RODIMUS_ROUND_BENCH=0 skips step 1 (the tool is still built); RODIMUS_ROUND_PROMPT (16) and
# RODIMUS_ROUND_BATCH (1) are the profiled decode's (RODIMUS_ROUND_GEN its steps, 6;
# RODIMUS_ROUND_FLAGS more bench flags, e.g. --matmul rounded), RODIMUS_TOOL
# a rodimus tool already built (else built here), RODIMUS_ROUND_METRICS adds ncu metrics
# (comma-separated) to the CSV; RODIMUS_ROUND_DETAIL (a kernel-name regex) adds a full ncu report of
# that kernel's last launch in the last step ($OUT/ncu_detail.txt). The prefill's kernels (the
# prompt's batch of RODIMUS_ROUND_PROMPT tokens a row) are summed by name before the step's table.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${OUT:-$root/build/gpu_bench/out}
mkdir -p "$out"
export LD_LIBRARY_PATH=$root/.deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
tool=${RODIMUS_TOOL:-$(find "$root/build/gpu_check" -type f -name rodimus -perm -u+x 2>/dev/null | head -1)}
export RODIMUS_TOOL=$tool # empty: gpu_bench_model.sh builds it
if [ "${RODIMUS_ROUND_BENCH:-1}" = 1 ]; then
  RODIMUS_BENCH_BATCHES="${RODIMUS_ROUND_BATCHES:-1 16 64}" RODIMUS_BENCH_PREFILL="8x2048" \
    RODIMUS_BENCH_MATMUL=exact RODIMUS_BENCH_LAUNCH="overlapped serial" bash scripts/gpu_bench_model.sh
else # the build only (empty grids)
  RODIMUS_BENCH_BATCHES="" RODIMUS_BENCH_PREFILL="" bash scripts/gpu_bench_model.sh >/dev/null
fi
[ -n "$tool" ] || tool=$(find "$root/build/gpu_check" -type f -name rodimus -perm -u+x | head -1)
export RODIMUS_TOOL=$tool
[ "${RODIMUS_ROUND_BENCH:-1}" = 1 ] && RODIMUS_BENCH_BATCHES="1 64" RODIMUS_BENCH_PREFILL="8x2048" \
  RODIMUS_BENCH_MATMUL=rounded RODIMUS_BENCH_LAUNCH=overlapped bash scripts/gpu_bench_model.sh | tail -4
if command -v ncu >/dev/null && [ "${RODIMUS_ROUND_NCU:-1}" = 1 ]; then
  batch=${RODIMUS_ROUND_BATCH:-1}
  echo "== ncu: batch-$batch decode, 2 layers, per-kernel durations (us)"
  timeout 240 ncu --cache-control none --clock-control none --metrics "gpu__time_duration.sum${RODIMUS_ROUND_METRICS:+,$RODIMUS_ROUND_METRICS}" \
    --csv --print-units base "$tool" bench --backend cuda --geometry rodimus-plus-1.6b --layers 2 \
    --batch "$batch" --prompt "${RODIMUS_ROUND_PROMPT:-16}" --gen "${RODIMUS_ROUND_GEN:-6}" --dir "$root/build/gpu_check/model-1.6b-2l" \
    ${RODIMUS_ROUND_FLAGS:-} >"$out/ncu_decode_b${batch}_2layers.csv" 2>"$out/ncu.err" || { tail -5 "$out/ncu.err"; }
  python3 - "$out/ncu_decode_b${batch}_2layers.csv" <<'PY'
import csv, collections, sys
rows = list(csv.reader(open(sys.argv[1])))
h = next(i for i, r in enumerate(rows) if 'Kernel Name' in r)
col = {name: rows[h].index(name) for name in ('ID', 'Kernel Name', 'Metric Name', 'Metric Value')}
kernels = {}  # launch ID -> (name, {metric: value}), in launch order
for r in rows[h + 1:]:
    name = r[col['Kernel Name']].split('(')[0].replace('void ', '').replace('rodimus::', '').replace('detail::', '')[:56]
    kernels.setdefault(r[col['ID']], (name, {}))[1][r[col['Metric Name']]] = float(r[col['Metric Value']].replace(',', ''))
seq = list(kernels.values())
dur = 'gpu__time_duration.sum'
embeds = [i for i, (n, _) in enumerate(seq) if 'embedding_kernel' in n]  # prefill, then each step
if len(embeds) < 2:
    sys.exit(f"{len(embeds)} embedding launches in the CSV: no decode step to show (ncu cut off?)")
pre = collections.Counter()  # the prefill: from its embedding to the first decode step's
for n, ms in seq[embeds[0]:embeds[1]]: pre[n] += ms[dur] / 1e3
print(f"prefill, 2 layers + head: {sum(pre.values()):.1f} us in {embeds[1] - embeds[0]} kernels; by kernel:")
for n, us in pre.most_common(): print(f"{us:9.1f}  {n}")
start = embeds[-1]  # the last decode step
step = seq[start:]
others = sorted({m for _, ms in step for m in ms} - {dur})
print(f"last decode step, 2 layers + head: {sum(ms[dur] for _, ms in step) / 1e3:.1f} us in {len(step)} kernels")
print(f"{'us':>7}  {'kernel':56} " + ' '.join(f'{m[:22]:>22}' for m in others))
for n, ms in step:
    print(f"{ms[dur] / 1e3:7.1f}  {n:56} " + ' '.join(f'{ms.get(m, float("nan")):22.1f}' for m in others))
agg = collections.Counter()
for n, ms in step: agg[n] += ms[dur] / 1e3
print("by kernel:")
for n, us in agg.most_common(): print(f"{us:8.1f}  {n}")
PY
  if [ -n "${RODIMUS_ROUND_DETAIL:-}" ]; then
    # the kernel's launches in the 2-layer run: prefill, then 6 decode steps of 2 launches each
    n=$(grep -c "$RODIMUS_ROUND_DETAIL" "$out/ncu_decode_b${batch}_2layers.csv")
    # (the CSV has a line per launch and metric: the duration and RODIMUS_ROUND_METRICS' ones)
    per=$(python3 -c "import sys; m = sys.argv[2]; print(max(1, int(sys.argv[1]) // (1 + (len(m.split(',')) if m else 0))))" "$n" "${RODIMUS_ROUND_METRICS:-}")
    timeout 200 ncu --clock-control none -k "regex:$RODIMUS_ROUND_DETAIL" --launch-skip $((per - 1)) --launch-count 1 \
      --section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats \
      --section SchedulerStats --section MemoryWorkloadAnalysis "$tool" bench --backend cuda \
      --geometry rodimus-plus-1.6b --layers 2 --batch "$batch" --prompt "${RODIMUS_ROUND_PROMPT:-16}" --gen "${RODIMUS_ROUND_GEN:-6}" \
      --dir "$root/build/gpu_check/model-1.6b-2l" ${RODIMUS_ROUND_FLAGS:-} >"$out/ncu_detail.txt" 2>&1 || tail -5 "$out/ncu_detail.txt"
    grep -E "Duration|Throughput|Stall|Warp Cycles|Issued|Eligible|Registers|Achieved|Block Limit|Grid Size" \
      "$out/ncu_detail.txt" | head -40
  fi
fi
