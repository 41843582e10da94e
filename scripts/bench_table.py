#!/usr/bin/env python3
"""One line per Google Benchmark row of the given JSON files: name, median_us and every other
counter the benchmark reported (limit_ratio, GB/s, TFLOP/s). For device runs whose output is the
only thing read back: `python3 scripts/bench_table.py $OUT/bench_*.json`."""
import json
import sys

for path in sys.argv[1:]:
    try:
        d = json.load(open(path))
    except Exception as e:  # a crashed benchmark leaves a partial file
        print(f"{path}: unreadable ({e})")
        continue
    ctx = d.get("context", {})
    print(f"# {path.split('/')[-1]}: {ctx.get('device', '?')}")
    skip = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads",
            "iterations", "real_time", "cpu_time", "time_unit", "family_index",
            "per_family_instance_index", "aggregate_name", "aggregate_unit"}
    for b in d.get("benchmarks", []):
        name = b["name"].replace("/manual_time", "")
        if "error_occurred" in b:
            print(f"{name}: ERROR {b.get('error_message', '')}")
            continue
        extra = " ".join(f"{k}={v:.4g}" for k, v in b.items()
                         if k not in skip and isinstance(v, (int, float)))
        print(f"{name}: {extra}")
