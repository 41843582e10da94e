#!/usr/bin/env bash
# Batch-1 decode of quantised weights against bf16 on the CPU, in one command (issue 12, speed;
# docs/QUANT.md "Speed"):
#   1. build only the `rodimus` tool (Release, -march=native, no CUDA) into build/cpu_quant, with
#      the Debian packages unpacked in .deps/root/usr when present (scripts/gpu_deps.sh; a machine
#      without them uses the system's)
#   2. `rodimus bench --backend cpu --batch 1` on one random checkpoint (written once, kept in
#      build/cpu_quant/model) with --weights stored (bf16), q8 and q4, interleaved: round 1 in
#      that order, round 2 reversed, so a drift of the machine does not favour one setting
#   3. one JSON line per run into $OUT (6 files: r<round>_<weights>.json), a short table last:
#      decode tokens/s, the ratio to bf16 of the same round, and decode_limit_ratio (the share of
#      the weight-streaming floor of the run's own bytes, against the best read-probe pass).
# Usage: bash scripts/cpu_quant_round.sh
# Environment (defaults in brackets): OUT [build/cpu_quant/out], GEOMETRY [rodimus-plus-1.6b],
# LAYERS [0: the geometry's own], PROMPT [16], GEN [32], THREADS [the physical cores: decode is
# bound by memory, a second hardware thread per core only adds synchronisation], ROUNDS [2],
# KERNELS [0; 1: also build bench_quant_linear and run its batch-1 rows (the kernels alone on every
# hardware thread, against the read bandwidth it measures) before the model runs].
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bld=$root/build/cpu_quant
out=${OUT:-$bld/out}
geometry=${GEOMETRY:-rodimus-plus-1.6b}
layers=${LAYERS:-0}
prompt=${PROMPT:-16}
gen=${GEN:-32}
rounds=${ROUNDS:-2}
cores=$(lscpu -p=core,socket 2>/dev/null | grep -v '^#' | sort -u | wc -l)
[ "${cores:-0}" -gt 0 ] || cores=$(nproc)
threads=${THREADS:-$cores}
mkdir -p "$out" "$bld"

echo "== machine"
date -u +%Y-%m-%dT%H:%M:%SZ
echo "nproc $(nproc), physical cores $cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo "flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512bw|avx512_vnni|avx_vnni|amx_int8)$' | tr '\n' ' ')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
g++ --version | head -1

echo "== build (rodimus tool only)"
t0=$(date +%s)
kernels=${KERNELS:-0}
targets=(rodimus_tool)
[ "$kernels" = 1 ] && targets+=(bench_quant_linear)
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DRODIMUS_CUDA=OFF -DRODIMUS_BUILD_TESTS=OFF
  -DRODIMUS_BUILD_BENCH=$([ "$kernels" = 1 ] && echo ON || echo OFF) -DRODIMUS_BUILD_EXAMPLES=ON)
deps=$root/.deps/root/usr
if [ -d "$deps" ]; then
  cmake_args+=(-DCMAKE_PREFIX_PATH="$deps")
  export LD_LIBRARY_PATH=$deps/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
else
  echo "(no .deps/root/usr: the system's packages)"
fi
log=$bld/build.log
if ! { cmake -S "$root" -B "$bld" "${cmake_args[@]}" && cmake --build "$bld" -j "$(nproc)" --target "${targets[@]}"; } >"$log" 2>&1; then
  grep -B2 -A12 -E "error|Error" "$log" | head -80
  echo "FAILED: build (log: $log)"
  exit 1
fi
tool=$bld/bin/rodimus
[ -x "$tool" ] || { echo "FAILED: no $tool"; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"

if [ "$kernels" = 1 ]; then
  echo "== kernels alone (bench_quant_linear, batch 1, every hardware thread)"
  "$bld/bench/bench_quant_linear" --benchmark_filter='limit/read|/(q8_0|q4_0|bf16)/1/' \
    --benchmark_min_time=0.2 --benchmark_out="$out/bench_quant_linear.json" \
    --benchmark_out_format=json 2>&1 | grep -E '^(limit|quant_linear)'
fi

echo "== bench (geometry $geometry, batch 1, prompt $prompt, gen $gen, $threads threads)"
model=$bld/model/$geometry-L$layers
mkdir -p "$model"
common=(bench --backend cpu --geometry "$geometry" --batch 1 --prompt "$prompt" --gen "$gen"
  --dir "$model" --json)
[ "$layers" != 0 ] && common+=(--layers "$layers")
common+=(--threads "$threads")
rm -f "$out"/r*_*.json
status=0
for r in $(seq 1 "$rounds"); do
  order="stored q8 q4"
  [ $((r % 2)) -eq 0 ] && order="q4 q8 stored"
  for w in $order; do
    t1=$(date +%s)
    if "$tool" "${common[@]}" --weights "$w" >"$out/r${r}_$w.json" 2>"$bld/r${r}_$w.err"; then
      echo "round $r $w: $(( $(date +%s) - t1 )) s"
    else
      echo "FAILED: round $r $w"; cat "$bld/r${r}_$w.err"; status=1
    fi
  done
done

# One number from a JSON line (nlohmann's dump: "key":value, no spaces).
field() { sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" "$1"; }
echo "== table (decode tokens/s; x bf16 of the same round; share of its own floor, best probe)"
printf '%-6s %-7s %10s %9s %7s %8s %11s %6s\n' round weights tokens/s "x bf16" floor paired "GB/step" load
for r in $(seq 1 "$rounds"); do
  base=$(field "$out/r${r}_stored.json" decode_tokens_per_s)
  for w in stored q8 q4; do
    f=$out/r${r}_$w.json
    tps=$(field "$f" decode_tokens_per_s)
    [ -n "$tps" ] || { printf '%-6s %-7s %10s\n' "$r" "$w" "(failed)"; continue; }
    awk -v r="$r" -v w="$w" -v t="$tps" -v b="${base:-0}" -v f="$(field "$f" decode_limit_ratio)" \
      -v p="$(field "$f" decode_limit_ratio_paired_median)" -v g="$(field "$f" weight_bytes)" \
      -v l="$(field "$f" load_average_1min)" 'BEGIN {
        printf "%-6s %-7s %10.2f %9s %7.2f %8.2f %11.3f %6.2f\n", r, w, t,
          (b > 0 ? sprintf("%.2fx", t / b) : "-"), f, p, g / 1e9, l }'
  done
done
echo "goals (issue 12): q8 >= 1.80x and q4 >= 3.00x bf16 of the same round, each floor >= 0.60"
exit $status
