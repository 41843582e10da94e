#!/usr/bin/env bash
# The CPU benchmark run behind bench/results/ and the README's CPU table: every benchmark binary
# (Google Benchmark JSON and console table), the whole-model `rodimus bench` on the released 1.6B
# geometry, the plots, and a summary of the docs/PERFORMANCE.md goals computed from those files.
#
#   bash scripts/bench_cpu.sh [BUILD_DIR] [OUT_DIR]      defaults: build/release, bench/results
#
# BUILD_DIR: a Release build with -DRODIMUS_BUILD_BENCH=ON (scripts/setup.sh makes build/release;
# configured here if missing); the benchmark targets are built first. Run it on a quiet machine: the
# ratios are against limits each binary measures in the same run, but a busy machine makes those
# limits (and the ratios) noisy. Takes about 5 minutes (plus writing 3.2 GB of random weights to
# $TMPDIR the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
out=${2:-bench/results}
mkdir -p "$out"
[ -f "$build/CMakeCache.txt" ] || cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DRODIMUS_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target bench_gla bench_linear bench_elementwise bench_swska rodimus_tool
# bench_gla: 5 repetitions in random order, medians reported (the chunked/scan ratio compares two
# benchmarks that the machine's load and the state of the last-level cache move by 20-30% from run
# to run); the others: one run each.
for b in bench_gla bench_linear bench_elementwise bench_swska; do
  echo "-- $b"
  extra=()
  [ "$b" = bench_gla ] && extra=(--benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
    --benchmark_report_aggregates_only=true)
  "$build/bench/$b" --benchmark_min_time=0.2 "${extra[@]}" --benchmark_out="$out/$b.json" \
    --benchmark_out_format=json >"$out/$b.txt"
done
echo "-- rodimus bench"
"$build/bin/rodimus" bench --geometry rodimus-plus-1.6b --prompt 16 --gen 16 --json \
  >"$out/rodimus_bench_plus_1.6b.json"
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  /usr/bin/python3 scripts/plot_bench.py "$out"/bench_*.json --out "$out"
else
  echo "(no matplotlib for /usr/bin/python3: plots skipped)"
fi
/usr/bin/python3 scripts/bench_summary.py "$out" | tee "$out/summary.txt"
