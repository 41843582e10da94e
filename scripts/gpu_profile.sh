#!/usr/bin/env bash
# Where the whole model's time goes on the GPU: per-kernel durations from Nsight Compute (one metric,
# gpu__time_duration, so one replay pass per kernel) for a decode step at B = 1 and B = 64 and a
# prefill of B = 8 x T = 2048, on the rodimus-plus-1.6b geometry cut to RODIMUS_PROFILE_LAYERS (2)
# layers, summed per kernel name and per token; plus the full 24-layer `rodimus bench` figures for
# the same shapes. Builds the tool as scripts/gpu_check.sh does (carry .deps).
# Usage (device tool): run(command="bash scripts/gpu_profile.sh", carry=[".deps"]).
# RODIMUS_PROFILE_ARGS: more `rodimus bench` flags for every run (e.g. "--matmul rounded").
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${OUT:-$root/build/gpu_profile/out}
bld=$root/build/gpu_check
mkdir -p "$out" "$bld"
deps=$root/.deps
nvcc=${CUDA_HOME:-/usr/local/cuda}/bin/nvcc
layers=${RODIMUS_PROFILE_LAYERS:-2}
cmake -S "$root" -B "$bld" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$deps/root/usr" \
  -DCMAKE_CUDA_COMPILER="$nvcc" -DRODIMUS_CUDA=ON -DRODIMUS_WERROR=ON -DRODIMUS_BUILD_BENCH=ON \
  -DRODIMUS_HEADER_CHECK=OFF >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
cmake --build "$bld" -j "$(nproc)" --target rodimus_tool ${RODIMUS_PROFILE_EXTRA_TARGETS:-} \
  >>"$out/build.log" 2>&1 || { grep -B2 -A12 -E "error" "$out/build.log" | head -80; exit 1; }
export LD_LIBRARY_PATH=$deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
tool=$(find "$bld" -type f -name rodimus -perm -u+x | head -1)
read -r -a extra <<<"${RODIMUS_PROFILE_ARGS:-}"

echo "== whole model, 24 layers"
[ "${RODIMUS_PROFILE_BENCH:-1}" = 1 ] && bench_shapes=("1 128 32" "64 128 32" "8 2048 2") || bench_shapes=()
for shape in "${bench_shapes[@]}"; do
  read -r b t n <<<"$shape"
  "$tool" bench --backend cuda --geometry rodimus-plus-1.6b --batch "$b" --prompt "$t" --gen "$n" \
    --dir "$bld/model-1.6b" --json "${extra[@]}" >"$out/bench_b${b}_t${t}.json" 2>"$out/bench.err" || cat "$out/bench.err"
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], 'prefill tok/s %.0f decode tok/s %.1f ratio %.3f' % (d['prefill_tokens_per_s'], d['decode_tokens_per_s'], d['decode_limit_ratio']))" \
    "$out/bench_b${b}_t${t}.json" "B=$b T=$t"
done

if command -v ncu >/dev/null && [ "${RODIMUS_PROFILE_NCU:-1}" = 1 ]; then
  echo "== ncu per-kernel time, $layers layers"
  # RODIMUS_PROFILE_SHAPES: "B T GEN" triples separated by ';'.
  IFS=';' read -r -a ncu_shapes <<<"${RODIMUS_PROFILE_SHAPES:-1 16 4;64 16 4;8 2048 1}"
  for shape in "${ncu_shapes[@]}"; do
    read -r b t n <<<"$shape"
    timeout 240 ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
      "$tool" bench --backend cuda --geometry rodimus-plus-1.6b --layers "$layers" --batch "$b" \
      --prompt "$t" --gen "$n" --dir "$bld/model-l$layers" "${extra[@]}" >"$out/ncu_b${b}_t${t}.csv" 2>"$out/ncu_b${b}_t${t}.err" ||
      { echo "ncu B=$b T=$t failed"; tail -5 "$out/ncu_b${b}_t${t}.err"; }
  done
  python3 - "$out" "$layers" <<'PY'
import csv, sys, os, collections, re
out, layers = sys.argv[1], int(sys.argv[2])
for name in sorted(os.listdir(out)):
    if not name.startswith('ncu_') or not name.endswith('.csv'): continue
    rows = []
    with open(os.path.join(out, name)) as f:
        lines = [l for l in f if l.startswith('"')]
    for r in csv.DictReader(lines):
        if r.get('Metric Name') == 'gpu__time_duration.sum':
            rows.append((r['Kernel Name'], float(r['Metric Value'].replace(',', ''))))
    if not rows: print(name, 'no rows'); continue
    b = int(re.search(r'_b(\d+)_', name).group(1)); t = int(re.search(r'_t(\d+)', name).group(1))
    decode = t < 1000
    # bench: warm-up / probe kernels, one prefill, then decode steps. Split at the largest
    # group: take all launches, group by name, report total ns and count.
    agg = collections.OrderedDict()
    for k, ns in rows:
        k = re.sub(r'\(.*', '', k)[:70]
        a = agg.setdefault(k, [0.0, 0]); a[0] += ns; a[1] += 1
    total = sum(v[0] for v in agg.values())
    print(f"-- {name}: {len(rows)} kernels, {total/1e3:.0f} us in all")
    for k, (ns, c) in sorted(agg.items(), key=lambda kv: -kv[1][0])[:25]:
        print(f"   {ns/1e3:10.1f} us {c:6d} x  {ns/c/1e3:8.2f} us  {k}")
PY
  # The raw CSVs in one archive (the device tool brings back a limited number of files).
  (cd "$out" && tar czf ncu_raw.tgz ncu_*.csv ncu_*.err 2>/dev/null && rm -f ncu_*.csv ncu_*.err)
fi
