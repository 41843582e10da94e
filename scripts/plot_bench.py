#!/usr/bin/python3
"""Turn Google Benchmark JSON from the CPU benchmark binaries into PNGs.

    /usr/bin/python3 scripts/plot_bench.py bench/results/*.json --out bench/results

Writes
  tokens_vs_T.png    tokens/s against the size argument (T for the GLA prefill forms, B for
                     decode, M for the others) per primitive and backend, log-log;
  limit_ratio.png    limit_ratio (achieved rate / the limit the same binary measured in the same
                     run) per benchmark at its largest size, one bar per backend;
  simd_speedup.png   SIMD / scalar tokens/s at the sizes both ran.
Benchmark names are <primitive>/<backend>[/<dtype>]/<size>...[/real_time]. Needs matplotlib
(/usr/bin/python3 has it; the python3 first on PATH may not).
"""
import argparse
import collections
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def parse_name(name):
    parts = [p for p in name.split("/") if p != "real_time"]
    prim, backend = parts[0], parts[1]
    rest = parts[2:]
    dtype = rest[0] if rest and not rest[0].isdigit() else ""
    sizes = [int(p) for p in rest if p.isdigit()]
    return prim, backend, dtype, sizes


def load(paths):
    rows = []
    for p in paths:
        with open(p) as f:
            data = json.load(f)
        for b in data.get("benchmarks", []):
            # One row per benchmark: the run itself, or the median of its repetitions.
            median = b.get("aggregate_name") == "median"
            if b.get("run_type", "iteration") != "iteration" and not median:
                continue
            name = b["run_name"] if median else b["name"]
            if name.startswith("limit/"):
                continue
            prim, backend, dtype, sizes = parse_name(name)
            rows.append({
                "prim": prim + (("/" + dtype) if dtype else ""),
                "backend": backend,
                "size": sizes[0] if sizes else 0,
                "shape": "/".join(str(s) for s in sizes),
                "tokens": b.get("tokens_per_s", 0.0),
                "ratio": b.get("limit_ratio", 0.0),
                "label": b.get("label", ""),
            })
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="+")
    ap.add_argument("--out", default=".")
    args = ap.parse_args()
    rows = load(args.json)
    if not rows:
        sys.exit("no benchmarks found in " + ", ".join(args.json))
    os.makedirs(args.out, exist_ok=True)

    # tokens/s against size, one panel per primitive
    by_prim = collections.defaultdict(list)
    for r in rows:
        by_prim[r["prim"]].append(r)
    prims = sorted(by_prim)
    cols = 4
    nrows = (len(prims) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    for ax, prim in zip(axes.flat, prims):
        series = collections.defaultdict(list)
        for r in by_prim[prim]:
            series[r["backend"]].append((r["size"], r["tokens"]))
        for backend, pts in sorted(series.items()):
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=backend)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(prim, fontsize=9)
        ax.set_xlabel("T / B / M")
        ax.set_ylabel("tokens/s")
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(prims):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "tokens_vs_T.png"), dpi=110)
    plt.close(fig)

    # limit_ratio at the largest size per primitive and backend
    best = {}
    for r in rows:
        key = (r["prim"], r["backend"])
        if key not in best or r["size"] > best[key]["size"]:
            best[key] = r
    backends = sorted({k[1] for k in best})
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(prims) * len(backends) / 2), 4.5))
    width = 0.8 / max(1, len(backends))
    for i, backend in enumerate(backends):
        xs, ys = [], []
        for j, prim in enumerate(prims):
            if (prim, backend) in best:
                xs.append(j + i * width)
                ys.append(best[(prim, backend)]["ratio"])
        ax.bar(xs, ys, width=width, label=backend)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(prims))])
    ax.set_xticklabels([p for p in prims], rotation=40, ha="right", fontsize=8)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_ylabel("limit_ratio (largest size)")
    ax.set_title("achieved rate / machine limit measured in the same run")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "limit_ratio.png"), dpi=110)
    plt.close(fig)

    # SIMD / scalar speed-up where both ran the same shape
    scalar = {(r["prim"], r["shape"]): r["tokens"] for r in rows if r["backend"] == "scalar"}
    bars = []
    for r in rows:
        if r["backend"] != "scalar" and (r["prim"], r["shape"]) in scalar and scalar[(r["prim"], r["shape"])] > 0:
            bars.append((f'{r["prim"]}/{r["shape"]}', r["backend"], r["tokens"] / scalar[(r["prim"], r["shape"])]))
    if bars:
        names = sorted({b[0] for b in bars})
        bks = sorted({b[1] for b in bars})
        fig, ax = plt.subplots(figsize=(max(8, 0.5 * len(names) * len(bks)), 4.5))
        width = 0.8 / len(bks)
        for i, backend in enumerate(bks):
            vals = {b[0]: b[2] for b in bars if b[1] == backend}
            ax.bar([j + i * width for j, n in enumerate(names) if n in vals], [vals[n] for n in names if n in vals],
                   width=width, label=backend)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))])
        ax.set_xticklabels(names, rotation=40, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.axhline(4.0, color="r", lw=0.8, ls="--", label="goal 4x")
        ax.set_ylabel("SIMD tokens/s / scalar tokens/s")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "simd_speedup.png"), dpi=110)
        plt.close(fig)
    print("wrote", ", ".join(sorted(f for f in os.listdir(args.out) if f.endswith(".png"))))


if __name__ == "__main__":
    main()
