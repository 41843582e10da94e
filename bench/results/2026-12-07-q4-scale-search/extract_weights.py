"""tiny-coder's bf16 weights as raw f32 files for quantise_block_time.cpp: proj.f32 (every
projection the q4 preset quantises: mixer fc / out_proj, attention q / k / v / out, FFN fc /
out_proj) and head.f32 (the tied embedding table, which serves as the head).

    python3 extract_weights.py OUTDIR   (run from the repository root)
"""
import array
import json
import os
import re
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/qexp"
os.makedirs(out, exist_ok=True)
path = "examples/models/tiny-coder/model.safetensors"
with open(path, "rb") as f, open(os.path.join(out, "proj.f32"), "wb") as proj, open(
    os.path.join(out, "head.f32"), "wb"
) as head:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    projection = re.compile(
        r"(mixer\.fc|mixer\.out_proj|attn\.(q|k|v|out)_proj|ffn\.fc|ffn\.out_proj)\.weight$"
    )
    for name, t in header.items():
        if name == "__metadata__" or len(t["shape"]) != 2 or t["dtype"] != "BF16":
            continue
        is_head = name in ("lm_head.weight", "model.embeddings.weight")
        if not is_head and (not projection.search(name) or "inner_mixer" in name):
            continue
        begin, end = t["data_offsets"]
        f.seek(8 + n + begin)
        bf16 = array.array("H")
        bf16.frombytes(f.read(end - begin))
        f32 = array.array("I", [b << 16 for b in bf16])
        (head if is_head else proj).write(f32.tobytes())
