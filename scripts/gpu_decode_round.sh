#!/usr/bin/env bash
# The decode-speed round of issue 10 in one device call, after scripts/gpu_check.sh has built the
# tool in build/gpu_check (same machine, still warm) or building it here:
#   1. rodimus bench on the rodimus-plus-1.6b geometry (bf16): decode B = 1, 16, 64 and prefill
#      8 x 2048 with --launch overlapped and serial (--matmul exact), then --matmul rounded
#      (overlapped) B = 1, 64 and 8 x 2048: JSON to $OUT/model/, one table (scripts/gpu_bench_model.sh)
#   2. Nsight Compute on a 2-layer batch-1 decode: every kernel's duration (caches and clocks left
#      alone, so small kernels are not charged a cold L2), a CSV to $OUT
# Usage (device tool): run(command="bash scripts/gpu_decode_round.sh", carry=[".deps"]).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${OUT:-$root/build/gpu_bench/out}
mkdir -p "$out"
export LD_LIBRARY_PATH=$root/.deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
tool=$(find "$root/build/gpu_check" -type f -name rodimus -perm -u+x 2>/dev/null | head -1)
export RODIMUS_TOOL=$tool # empty: gpu_bench_model.sh builds it
RODIMUS_BENCH_BATCHES="${RODIMUS_ROUND_BATCHES:-1 16 64}" RODIMUS_BENCH_PREFILL="8x2048" \
  RODIMUS_BENCH_MATMUL=exact RODIMUS_BENCH_LAUNCH="overlapped serial" bash scripts/gpu_bench_model.sh
[ -n "$tool" ] || tool=$(find "$root/build/gpu_check" -type f -name rodimus -perm -u+x | head -1)
export RODIMUS_TOOL=$tool
RODIMUS_BENCH_BATCHES="1 64" RODIMUS_BENCH_PREFILL="8x2048" RODIMUS_BENCH_MATMUL=rounded \
  RODIMUS_BENCH_LAUNCH=overlapped bash scripts/gpu_bench_model.sh | tail -4
if command -v ncu >/dev/null && [ "${RODIMUS_ROUND_NCU:-1}" = 1 ]; then
  echo "== ncu: batch-1 decode, 2 layers, per-kernel durations (us)"
  timeout 240 ncu --cache-control none --clock-control none --metrics gpu__time_duration.sum \
    --csv --print-units base "$tool" bench --backend cuda --geometry rodimus-plus-1.6b --layers 2 \
    --batch 1 --prompt 16 --gen 6 --dir "$root/build/gpu_check/model-1.6b-2l" \
    >"$out/ncu_decode_b1_2layers.csv" 2>"$out/ncu.err" || { tail -5 "$out/ncu.err"; }
  python3 - "$out/ncu_decode_b1_2layers.csv" <<'PY'
import csv, collections, sys
rows = list(csv.reader(open(sys.argv[1])))
h = next(i for i, r in enumerate(rows) if 'Kernel Name' in r)
k, v = rows[h].index('Kernel Name'), rows[h].index('Metric Value')
data = rows[h + 1:]
# the last decode step: from the last embedding kernel on
start = max(i for i, r in enumerate(data) if 'embedding_kernel' in r[k])
agg = collections.Counter()
for r in data[start:]:
    agg[r[k].split('(')[0].replace('void ', '').replace('detail::', '')[:60]] += float(r[v].replace(',', '')) / 1e3
print(f"last decode step, 2 layers + head: {sum(agg.values()):.1f} us in {len(data) - start} kernels")
for name, us in agg.most_common(): print(f"{us:8.1f}  {name}")
PY
fi
