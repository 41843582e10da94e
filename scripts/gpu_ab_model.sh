#!/usr/bin/env bash
# A / B of the whole model on the GPU in one device call: `rodimus bench --backend cuda` of a base
# commit (A) against the working tree (B), both built here with the project's CMake, the runs
# interleaved A B A B ... so that the machine's drift falls on both; then one table of the median
# tokens/s of each and B / A. The base travels as a tarball made on the build machine:
#   mkdir -p build/ab && git archive -o build/ab/base.tar BASE_COMMIT \
#     ':(exclude)tests/data' ':(exclude)examples/models'    (the data comes from the working tree)
#   run(command="bash scripts/gpu_ab_model.sh", carry=[".deps", "build/ab"])
# RODIMUS_AB_RUNS: bench flag sets separated by ';' (default: decode B = 1, 16, 64, exact, prompt
# 128); RODIMUS_AB_REPEAT: rounds (default 3). JSON of every run to $OUT/ab/.
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
build() { # source, build dir
  cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$deps/root/usr" \
    -DCMAKE_CUDA_COMPILER="${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" -DRODIMUS_CUDA=ON \
    -DRODIMUS_BUILD_BENCH=ON -DRODIMUS_HEADER_CHECK=OFF >"$2.log" 2>&1 &&
    cmake --build "$2" -j "$(( $(nproc) / 2 ))" --target rodimus_tool >>"$2.log" 2>&1
}
t0=$(date +%s)
build "$work/base/src" "$work/base/build" & pa=$!
build "$root" "$work/new/build" & pb=$!
wait $pa || { grep -B2 -A12 error "$work/base/build.log" | head -60; exit 1; }
wait $pb || { grep -B2 -A12 error "$work/new/build.log" | head -60; exit 1; }
echo "built A (base) and B (working tree) in $(( $(date +%s) - t0 )) s"
export LD_LIBRARY_PATH=$deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
tool_a=$(find "$work/base/build" -type f -name rodimus -perm -u+x | head -1)
tool_b=$(find "$work/new/build" -type f -name rodimus -perm -u+x | head -1)
IFS=';' read -r -a runs <<<"${RODIMUS_AB_RUNS:---batch 1 --gen 64;--batch 16 --gen 32;--batch 64 --gen 32}"
for rep in $(seq 1 "${RODIMUS_AB_REPEAT:-3}"); do
  for i in "${!runs[@]}"; do
    for side in a b; do
      tool=$tool_a; [ $side = b ] && tool=$tool_b
      # shellcheck disable=SC2086
      "$tool" bench --backend cuda --geometry rodimus-plus-1.6b --dtype bf16 --prompt 128 \
        --dir "$work/model-$side" --json ${runs[$i]} >"$out/run${i}_${side}_$rep.json" \
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
print(f"{'run':36} {'A decode tok/s':>14} {'B decode tok/s':>14} {'B / A':>6} {'B of copy bw':>12}")
for i, r in enumerate(runs):
    a, b = med(i, 'a', 'decode_tokens_per_s'), med(i, 'b', 'decode_tokens_per_s')
    print(f"{r:36} {a:14.1f} {b:14.1f} {b / a:6.3f} {med(i, 'b', 'decode_limit_ratio'):12.3f}")
PY
