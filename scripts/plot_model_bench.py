#!/usr/bin/python3
"""Plot the whole-model GPU figures that scripts/gpu_bench_model.sh writes (`rodimus bench --json`).

    /usr/bin/python3 scripts/plot_model_bench.py DIR [--out DIR]

DIR holds decode_<matmul>_b<B>.json and prefill_<matmul>_<B>x<T>.json. Writes
  model_decode_vs_batch.png     decode tokens/s against the batch size, one line per --matmul mode
  model_prefill_vs_tokens.png   prefill tokens/s against B x T, one line per --matmul mode
Both plots also mark the official implementation's end-to-end figures (../shared/ANCHORS.md, "Whole
model": its PyTorch model with the fla Triton kernels, one H200, the first of its two runs); --card
names the card our JSON came from in the titles (those figures are the H200's whatever it is).
Needs matplotlib (/usr/bin/python3 has it).
"""
import argparse
import collections
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


# The official implementation on one H200 (ANCHORS.md, measured 2026-12-04, first run).
OFFICIAL_DECODE = [(1, 9.1), (16, 126.0), (64, 539.0)]  # (batch, tokens/s), prompt 128
OFFICIAL_PREFILL = [(1, 2048, 29455.0), (8, 2048, 84001.0), (1, 8192, 57669.0)]  # (B, T, tokens/s)


def load(folder):
    decode, prefill = collections.defaultdict(list), collections.defaultdict(list)
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json"):
            continue
        kind, mode = name.split("_")[:2]
        with open(os.path.join(folder, name)) as f:
            d = json.load(f)
        if kind == "decode":
            decode[mode].append((d["batch"], d["decode_tokens_per_s"]))
        elif kind == "prefill":
            prefill[mode].append((d["batch"] * d["prompt"], d["prefill_tokens_per_s"], d["batch"], d["prompt"]))
    return decode, prefill


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--out", default=None)
    ap.add_argument("--card", default="", help="the card of our runs, for the titles")
    args = ap.parse_args()
    card = f" ({args.card})" if args.card else ""
    out = args.out or args.folder
    decode, prefill = load(args.folder)
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, pts in sorted(decode.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"--matmul {mode}")
    ax.plot([p[0] for p in OFFICIAL_DECODE], [p[1] for p in OFFICIAL_DECODE], marker="x",
            linestyle="--", color="gray", label="official (H200)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size (prompt 128)")
    ax.set_ylabel("decode tokens/s")
    ax.set_title(f"rodimus-plus-1.6b bf16, CUDA{card}: decode")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "model_decode_vs_batch.png"), dpi=120)
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, pts in sorted(prefill.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"--matmul {mode}")
        for p in pts:
            ax.annotate(f"{p[2]}x{p[3]}", (p[0], p[1]), fontsize=7)
    official = sorted((b * t, r, b, t) for b, t, r in OFFICIAL_PREFILL)
    ax.plot([p[0] for p in official], [p[1] for p in official], marker="x", linestyle="none",
            color="gray", label="official (H200)")
    for p in official:
        ax.annotate(f"{p[2]}x{p[3]}", (p[0], p[1]), fontsize=7, color="gray")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("tokens per prefill call (B x T)")
    ax.set_ylabel("prefill tokens/s")
    ax.set_title(f"rodimus-plus-1.6b bf16, CUDA{card}: prefill")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "model_prefill_vs_tokens.png"), dpi=120)


if __name__ == "__main__":
    main()
