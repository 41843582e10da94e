#!/usr/bin/env bash
# The SW-SKA check of the GPU machine (scripts/gpu_check.sh is the whole one; this is its SW-SKA
# part, under 4 minutes): builds cuda_test_swska and bench_swska_cuda with the project's CMake
# (dependencies from .deps, configured as gpu_check.sh does, in the same build folder), runs the
# test, the benchmark (JSON), then compute-sanitizer on the test, three tools at once: memcheck on
# every case, racecheck and initcheck on the cases that run every SW-SKA kernel on small shapes
# (decode, ring store, the skip cases: the full set is too slow under racecheck).
# Usage (device tool): run(command="bash scripts/gpu_swska_check.sh", carry=[".deps"]).
# Results go to $OUT (build/gpu_check/out when OUT is unset): build.log, test.log,
# bench_swska_cuda.json, memcheck.log, racecheck.log, initcheck.log.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
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
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 || true

echo "== build"
[ -d "$deps/root/usr" ] || { echo "no .deps/root: run scripts/gpu_deps.sh here and carry .deps"; exit 1; }
t0=$(date +%s)
cmake -S "$root" -B "$bld" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$deps/root/usr" \
  -DCMAKE_CUDA_COMPILER="$nvcc" -DRODIMUS_CUDA=ON -DRODIMUS_WERROR=ON -DRODIMUS_BUILD_BENCH=ON \
  -DRODIMUS_HEADER_CHECK=OFF >"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
cmake --build "$bld" -j "$(nproc)" --target cuda_test_swska bench_swska_cuda >>"$out/build.log" 2>&1 ||
  { grep -B2 -A12 -E "error|Error" "$out/build.log" | head -150; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
export LD_LIBRARY_PATH=$deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
test_bin=$(find "$bld" -type f -name cuda_test_swska -perm -u+x | head -1)
bench_bin=$(find "$bld" -type f -name bench_swska_cuda -perm -u+x | head -1)

echo "== test"
t0=$(date +%s)
"$test_bin" 2>&1 | tee "$out/test.log" | tail -4 || fail cuda_test_swska
echo "test: $(( $(date +%s) - t0 )) s"

echo "== benchmark"
"$bench_bin" --benchmark_out="$out/bench_swska_cuda.json" --benchmark_out_format=json \
  --benchmark_counters_tabular=true 2>&1 | tee "$out/bench.log" || fail bench_swska_cuda

echo "== compute-sanitizer (memcheck: every test case; racecheck, initcheck: decode, ring store, skips)"
# initcheck: the combine kernel reads only the partials the pieces it uses wrote (a piece past a
# row's history writes none). The three run at once (the GPU is not timed here), 130 s each.
if [ -n "$sanitizer" ]; then
  t0=$(date +%s)
  filter='*decode*,*ring_store*,*skips*'
  pids=()
  for tool in memcheck racecheck initcheck; do
    args=("$test_bin")
    [ "$tool" = memcheck ] || args+=(-tc="$filter")
    ( timeout 130 "$sanitizer" --tool "$tool" --error-exitcode 99 "${args[@]}" >"$out/$tool.log" 2>&1
      echo $? >"$bld/swska_$tool.rc" ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  for tool in memcheck racecheck initcheck; do
    rc=$(cat "$bld/swska_$tool.rc" 2>/dev/null || echo missing)
    summary=$(grep -m1 -oE '(ERROR|RACECHECK) SUMMARY: [0-9]* (errors|hazards displayed)' "$out/$tool.log" || echo 'no summary')
    case $rc in
      0) echo "$tool: clean ($summary)" ;;
      124) fail "$tool: timed out after 130 s (inconclusive)" ;;
      *) fail "$tool: exit $rc ($summary)"; tail -30 "$out/$tool.log" ;;
    esac
  done
  echo "sanitizers: $(( $(date +%s) - t0 )) s"
else
  fail "compute-sanitizer not found"
fi

echo "== summary"
python3 - "$out/bench_swska_cuda.json" <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"bench json unreadable ({e})"); sys.exit(0)
print(d.get("context", {}).get("device", "?"))
print(f"{'benchmark':44} {'median us':>10} {'achieved':>10} {'limit':>10} {'ratio':>7}")
for b in d.get("benchmarks", []):
    name = b["name"].split("/iterations")[0]
    if "error_occurred" in b:
        print(f"{name:44} ERROR {b.get('error_message', '')}"); continue
    if "limit_ratio" not in b:
        continue
    got = b.get("GBps", b.get("TFLOPs", 0)); lim = b.get("copy_GBps", b.get("gemm_TFLOPs", 0))
    print(f"{name:44} {b['median_us']:10.2f} {got:10.1f} {lim:10.1f} {b['limit_ratio']:7.1%}")
PY
echo "overall: $([ $status -eq 0 ] && echo OK || echo FAILED)"
exit $status
