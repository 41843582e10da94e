#!/usr/bin/python3
"""The CPU goals of docs/PERFORMANCE.md, computed from the files scripts/bench_cpu.sh writes.

    /usr/bin/python3 scripts/bench_summary.py bench/results

Prints one line per goal with the measured ratios (every ratio from one binary's run; where the
run has repetitions, ratios of the medians):
  decode step       gla_decode limit_ratio (vs the read+write probe) and stream_ratio (vs in-place
                    streams of the same bytes per call), per batch size, f32 and bf16
  chunked vs scan   tokens/s of gla_chunkC over gla_scan at T >= 1024, f32, per C
  SIMD vs scalar    tokens/s of each element-wise primitive, SIMD over scalar, at M = 64
  whole model       decode_limit_ratio of `rodimus bench` (plus the best-step and paired ratios)
"""
import json
import os
import sys


def benchmarks(path):
    with open(path) as f:
        data = json.load(f)
    out = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") == "iteration":
            out[b["name"].replace("/real_time", "")] = b
        elif b.get("aggregate_name") == "median":  # repetitions: the median stands for the run
            out[b["run_name"].replace("/real_time", "")] = b
    return out, data.get("context", {})


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "bench/results"
    gla, ctx = benchmarks(os.path.join(d, "bench_gla.json"))
    ew, _ = benchmarks(os.path.join(d, "bench_elementwise.json"))
    print(f"bench_gla: load average at start {ctx.get('load_avg')}; limits measured at start: read "
          f"{float(ctx.get('read_bandwidth_bytes_per_s', 0)) / 1e9:.1f} GB/s, read+write "
          f"{float(ctx.get('read_write_bandwidth_bytes_per_s', 0)) / 1e9:.1f} GB/s, FMA "
          f"{float(ctx.get('fma_peak_flop_per_s', 0)) / 1e9:.0f} GFLOP/s")
    simd = [a for a in ("avx512", "avx2") if f"gla_scan/{a}/f32/1024" in gla]
    for arch in simd:
        for act in ("f32", "bf16"):
            cells = []
            for B in (1, 4, 16, 64):
                b = gla.get(f"gla_decode/{arch}/{act}/{B}")
                if b:
                    cells.append(f"B={B} {b['limit_ratio']:.2f} ({b.get('stream_ratio', 0):.2f})")
            print(f"decode step {arch} {act}: limit_ratio (stream_ratio): " + ", ".join(cells))
        for C in (16, 32, 64):
            cells = []
            for T in (1024, 4096):
                c, s = gla.get(f"gla_chunk{C}/{arch}/f32/{T}"), gla.get(f"gla_scan/{arch}/f32/{T}")
                if c and s:
                    cells.append(f"T={T} {c['tokens_per_s'] / s['tokens_per_s']:.2f}x")
            print(f"chunked C={C} vs scan {arch} f32: " + ", ".join(cells))
        cells = []
        for name, b in sorted(ew.items()):
            prim, backend, size = name.split("/")[0], name.split("/")[1], name.split("/")[-1]
            if backend == arch and size == "64":
                ref = ew.get(f"{prim}/scalar/64")
                if ref:
                    cells.append(f"{prim} {b['tokens_per_s'] / ref['tokens_per_s']:.1f}x")
        print(f"SIMD vs scalar {arch}, M=64: " + ", ".join(cells))
    path = os.path.join(d, "rodimus_bench_plus_1.6b.json")
    if os.path.exists(path):
        with open(path) as f:
            m = json.load(f)
        print(f"whole {m['geometry']} ({m['dtype']}, weights {m.get('weights', '?')}), batch "
              f"{m['batch']}: decode_limit_ratio {m['decode_limit_ratio']:.3f} "
              f"({m['decode_tokens_per_s']:.2f} tokens/s x {m['weight_bytes'] / 1e9:.2f} GB / "
              f"{m['read_bandwidth_bytes_per_s'] / 1e9:.1f} GB/s); best step "
              f"{m['decode_limit_ratio_best_step']:.3f}, paired median "
              f"{m['decode_limit_ratio_paired_median']:.3f}; load {m['load_average_1min']}")


if __name__ == "__main__":
    main()
