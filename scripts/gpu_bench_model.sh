#!/usr/bin/env bash
# The whole-model GPU figures of issue 10 in one run: `rodimus bench --backend cuda` on the
# rodimus-plus-1.6b geometry (bf16, random weights) over decode batch sizes (prompt 128) and prefill
# lengths, with --matmul exact and rounded, each JSON to $OUT/model/, then one table (tokens/s and the
# ratios to the limits the same binary measured). Builds the tool as scripts/gpu_check.sh does, or
# reuses RODIMUS_TOOL. Usage (device tool): run(command="bash scripts/gpu_bench_model.sh", carry=[".deps"]).
# RODIMUS_BENCH_BATCHES / RODIMUS_BENCH_PREFILL override the grids, RODIMUS_BENCH_MATMUL (exact rounded)
# and RODIMUS_BENCH_LAUNCH (overlapped; "overlapped serial" adds the serial-launch runs, named *_serial)
# the modes, RODIMUS_BENCH_DIR [build/gpu_check/model-1.6b] the random checkpoint's folder (written once,
# reused: e.g. /tmp/rodimus_ab/model-b after scripts/gpu_ab_model.sh in the same warm machine).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${OUT:-$root/build/gpu_bench/out}/model
bld=$root/build/gpu_check
mkdir -p "$out" "$bld"
deps=$root/.deps
tool=${RODIMUS_TOOL:-}
if [ -z "$tool" ]; then
  cmake -S "$root" -B "$bld" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$deps/root/usr" \
    -DCMAKE_CUDA_COMPILER="${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" -DRODIMUS_CUDA=ON -DRODIMUS_WERROR=ON \
    -DRODIMUS_BUILD_BENCH=ON -DRODIMUS_HEADER_CHECK=OFF >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
  cmake --build "$bld" -j "$(nproc)" --target rodimus_tool >>"$out/build.log" 2>&1 ||
    { grep -B2 -A12 error "$out/build.log" | head -80; exit 1; }
  tool=$(find "$bld" -type f -name rodimus -perm -u+x | head -1)
fi
export LD_LIBRARY_PATH=$deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
batches=${RODIMUS_BENCH_BATCHES-1 4 16 64 256} # set but empty: none (a build only)
prefill=${RODIMUS_BENCH_PREFILL-1x2048 8x512 8x2048}
run() {  # name, flags...
  local name=$1; shift
  "$tool" bench --backend cuda --geometry rodimus-plus-1.6b --dtype bf16 --dir "${RODIMUS_BENCH_DIR:-$bld/model-1.6b}" --json "$@" \
    >"$out/$name.json" 2>"$out/$name.err" || { echo "FAILED: bench $*"; tail -3 "$out/$name.err"; }
}
matmuls=${RODIMUS_BENCH_MATMUL:-exact rounded}
launches=${RODIMUS_BENCH_LAUNCH:-overlapped}
for l in $launches; do
  for m in $matmuls; do
    tag=${m}; [ "$l" = overlapped ] || tag=${m}_$l
    for b in $batches; do
      run "decode_${tag}_b$b" --matmul $m --launch $l --batch "$b" --prompt 128 --gen 32
    done
    for p in $prefill; do
      run "prefill_${tag}_$p" --matmul $m --launch $l --batch "${p%x*}" --prompt "${p#*x}" --gen 2
    done
  done
done
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
print(f"{'run':24} {'B':>4} {'T':>5} {'prefill tok/s':>13} {'of mm':>6} {'decode tok/s':>12} {'of copy bw':>10}")
for name in sorted(os.listdir(out)):
    if not name.endswith('.json'): continue
    try: d = json.load(open(os.path.join(out, name)))
    except Exception as e: print(name, 'unreadable', e); continue
    print(f"{name[:-5]:24} {d['batch']:4} {d['prompt']:5} {d['prefill_tokens_per_s']:13.0f} "
          f"{d.get('prefill_matmul_ratio', float('nan')):6.3f} {d['decode_tokens_per_s']:12.1f} {d['decode_limit_ratio']:10.3f}")
PY
