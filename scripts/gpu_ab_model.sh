#!/usr/bin/env bash
# A / B of the whole model on the GPU in one device call: `rodimus bench --backend cuda` of a base
# commit (A) against the working tree (B), both built here with the project's CMake, the runs
# interleaved A B A B ... so that the machine's drift falls on both; then one table of the median
# tokens/s of each and B / A. The base travels as a tarball made on the build machine:
#   mkdir -p build/ab && git archive -o build/ab/base.tar BASE_COMMIT \
#     ':(exclude)tests/data' ':(exclude)examples/models'    (the data comes from the working tree)
#   run(command="bash scripts/gpu_ab_model.sh", carry=[".deps", "build/ab"])
# RODIMUS_AB_RUNS: bench flag sets separated by ';', each naming its --prompt (default: decode
# B = 1, 16, 64, exact, prompt 128); RODIMUS_AB_REPEAT: rounds (default 3). JSON of every run to
# $OUT/ab/; a table of decode, then one of prefill (tokens/s and share of the GEMM rate).
# RODIMUS_AB_BUILD_ONLY=1 builds both sides and stops (a later run finds them built: tar keeps
# the files' times, so ninja has nothing to do), to overlap the builds with other work of a call.
# RODIMUS_AB_BACKEND=cpu: the same A / B on the device machine's CPU (built without CUDA, runs
# `--backend cpu --threads <physical cores>`; default runs: batch-1 decode of bf16 and q4 weights,
# prompt 16, 32 tokens), after bench_thread_pool of both sides (RODIMUS_AB_COPY: files of the
# working tree copied into the base before it is built, e.g. a benchmark the base lacks).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${OUT:-$root/build/gpu_bench/out}/ab
deps=$root/.deps
work=/tmp/rodimus_ab
mkdir -p "$out" "$work/base/src" "$work/new"
[ -f "$root/build/ab/base.tar" ] || { echo "no build/ab/base.tar (see the top of this script)"; exit 1; }
tar -xf "$root/build/ab/base.tar" -C "$work/base/src"
for d in tests/data examples/models; do
  [ -e "$work/base/src/$d" ] || ln -s "$root/$d" "$work/base/src/$d"
done
for f in ${RODIMUS_AB_COPY:-}; do mkdir -p "$(dirname "$work/base/src/$f")"; cp "$root/$f" "$work/base/src/$f"; done
backend=${RODIMUS_AB_BACKEND:-cuda}
if [ "$backend" = cpu ]; then
  cores=$(lscpu -p=core,socket 2>/dev/null | grep -v '^#' | sort -u | wc -l)
  [ "${cores:-0}" -gt 0 ] || cores=$(nproc)
  config=(-DRODIMUS_CUDA=OFF -DRODIMUS_BUILD_TESTS=OFF -DRODIMUS_BUILD_EXAMPLES=ON)
  targets=(rodimus_tool bench_thread_pool)
  common=(--backend cpu --geometry rodimus-plus-1.6b --threads "$cores")
  default_runs="--batch 1 --prompt 16 --gen 32 --weights stored;--batch 1 --prompt 16 --gen 32 --weights q4"
else
  config=(-DCMAKE_CUDA_COMPILER="${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" -DRODIMUS_CUDA=ON)
  targets=(rodimus_tool)
  common=(--backend cuda --geometry rodimus-plus-1.6b --dtype bf16)
  default_runs="--batch 1 --prompt 128 --gen 64;--batch 16 --prompt 128 --gen 32;--batch 64 --prompt 128 --gen 32"
fi
build() { # source, build dir
  cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$deps/root/usr" \
    "${config[@]}" -DRODIMUS_BUILD_BENCH=ON -DRODIMUS_HEADER_CHECK=OFF >"$2.log" 2>&1 &&
    cmake --build "$2" -j "$(( $(nproc) / 2 ))" --target "${targets[@]}" >>"$2.log" 2>&1
}
t0=$(date +%s)
build "$work/base/src" "$work/base/build" & pa=$!
build "$root" "$work/new/build" & pb=$!
wait $pa || { grep -B2 -A12 error "$work/base/build.log" | head -60; exit 1; }
wait $pb || { grep -B2 -A12 error "$work/new/build.log" | head -60; exit 1; }
echo "built A (base) and B (working tree) in $(( $(date +%s) - t0 )) s"
[ "${RODIMUS_AB_BUILD_ONLY:-0}" = 1 ] && exit 0
export LD_LIBRARY_PATH=$deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
tool_a=$(find "$work/base/build" -type f -name rodimus -perm -u+x | head -1)
tool_b=$(find "$work/new/build" -type f -name rodimus -perm -u+x | head -1)
if [ "$backend" = cpu ]; then
  for side in a b; do
    dir=$work/base/build; [ $side = b ] && dir=$work/new/build
    "$(find "$dir" -type f -name bench_thread_pool -perm -u+x | head -1)" --benchmark_min_time=0.2 \
      --benchmark_out="$out/pool_$side.json" --benchmark_out_format=json >"$work/pool_$side.txt" 2>&1
    echo "bench_thread_pool, side $side:"; grep -E '^pool/' "$work/pool_$side.txt"
  done
fi
IFS=';' read -r -a runs <<<"${RODIMUS_AB_RUNS:-$default_runs}"
for rep in $(seq 1 "${RODIMUS_AB_REPEAT:-3}"); do
  for i in "${!runs[@]}"; do
    for side in a b; do
      tool=$tool_a; [ $side = b ] && tool=$tool_b
      # shellcheck disable=SC2086
      "$tool" bench "${common[@]}" --dir "$work/model-$side" --json ${runs[$i]} >"$out/run${i}_${side}_$rep.json" \
        2>"$work/err" || { echo "FAILED: $side ${runs[$i]}"; tail -3 "$work/err"; }
    done
  done
done
python3 - "$out" "${runs[@]}" <<'PY'
import glob, json, os, statistics, sys
out, runs = sys.argv[1], sys.argv[2:]
def med(i, side, key):
    v = []
    for p in glob.glob(os.path.join(out, f"run{i}_{side}_*.json")):
        try: v.append(json.load(open(p))[key])
        except Exception: pass
    return statistics.median(v) if v else float('nan')
print(f"{'run':48} {'A decode tok/s':>14} {'B decode tok/s':>14} {'B / A':>6} {'B of copy bw':>12}")
for i, r in enumerate(runs):
    a, b = med(i, 'a', 'decode_tokens_per_s'), med(i, 'b', 'decode_tokens_per_s')
    print(f"{r:48} {a:14.1f} {b:14.1f} {b / a:6.3f} {med(i, 'b', 'decode_limit_ratio'):12.3f}")
print(f"{'run':48} {'A prefill tok/s':>15} {'B prefill tok/s':>15} {'B / A':>6} {'A of GEMM':>9} {'B of GEMM':>9}")
for i, r in enumerate(runs):
    a, b = med(i, 'a', 'prefill_tokens_per_s'), med(i, 'b', 'prefill_tokens_per_s')
    print(f"{r:48} {a:15.1f} {b:15.1f} {b / a:6.3f} {med(i, 'a', 'prefill_matmul_ratio'):9.3f} "
          f"{med(i, 'b', 'prefill_matmul_ratio'):9.3f}")
PY
